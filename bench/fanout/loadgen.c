/*
 * The fan-out benchmark's load generator (bench/fanout.ts compiles it on first use with
 * `cc -O2`). One process, one thread, epoll over every socket: C, so that on a small machine
 * the loader takes as little of the CPU the server needs as it can.
 *
 *   loadgen --mode=fanout --port=P[,P2…] --conns=N --pubs=M [--window=W] [--size=64]
 *           [--warmup=MS] [--time=MS] [--server-pids=PID,PID] [--broker-pid=PID] [--host=127.0.0.1]
 *     Opens N WebSocket connections (connection i to the i-th port in turn); the first M are
 *     publishers too. Each publisher keeps W masked text messages in flight: a new one when one
 *     of its own reaches it back (with several servers: reaches the next connection, which is
 *     on another server, so that the window covers the relay between servers). A
 *     message's payload carries its publisher, a per-publisher sequence number and its send
 *     time; every connection checks that it gets every publisher's messages in order, none
 *     missing, and measures each delivery's latency. After the measured window the publishers
 *     stop and the loader waits until every connection has every message sent. Prints one
 *     JSON line, with the server processes' CPU time over the window, read from
 *     /proc/PID/stat.
 *
 *     --sio: the server is socket.io (Engine.IO 4 over WebSocket): each connection joins the
 *     default namespace, and messages are `42["m","<payload>"]` events.
 *
 *   loadgen --mode=idle --port=P [--sources=127.0.0.2,...]
 *     Reads commands on stdin: `open N` opens N more idle connections (source addresses in turn,
 *     at most PER_SOURCE per address) and prints {"open":total}; `close` closes them all.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

#define RBUF 65536
#define PER_SOURCE 25000
#define HANDSHAKE_BATCH 200
#define LAT_LINEAR 20000 /* 1 µs buckets up to 20 ms, then 1 ms buckets */
#define LAT_BUCKETS (LAT_LINEAR + 20000)

static const char *host = "127.0.0.1";
static const char *path = "/";
/* socket.io's framing (--sio): `40` after the handshake, messages as `42["m","<payload>"]`. */
static int sio = 0;
static const char SIO_PREFIX[] = "42[\"m\",\"";
static const char SIO_SUFFIX[] = "\"]";
#define SIO_PREFIX_LEN (sizeof SIO_PREFIX - 1)
#define SIO_SUFFIX_LEN (sizeof SIO_SUFFIX - 1)
static int ports[16];
static int nports = 0;
static int port = 0; /* of the connection being opened: connection i goes to ports[i % nports] */

static void die(const char *what) {
  fprintf(stderr, "loadgen: %s: %s\n", what, strerror(errno));
  exit(2);
}

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double cpu_self(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* utime + stime of the server processes (all their threads), in seconds. */
static int server_pids[16];
static int server_pid_count = 0;
static int broker_pid = 0;
static double cpu_of(const int *pids, int count);
static double cpu_servers(void) { return cpu_of(server_pids, server_pid_count); }
static double cpu_broker(void) { return broker_pid ? cpu_of(&broker_pid, 1) : 0; }
static double cpu_of(const int *pids, int count) {
  double sum = 0;
  long hz = sysconf(_SC_CLK_TCK);
  for (int i = 0; i < count; i++) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", pids[i]);
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return -1;
    unsigned long long utime = 0, stime = 0;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return -1;
    sum += (double)(utime + stime) / hz;
  }
  return sum;
}

/* ---- Connections ---------------------------------------------------------------------------- */

typedef struct {
  int fd;
  int pub;            /* publisher index, -1 for a subscriber only */
  int acks;           /* the publisher whose messages, arriving here, let it send the next one (-1: none) */
  uint32_t rlen;
  uint8_t *rbuf;
  uint64_t *expected; /* next sequence number expected from each publisher */
} Conn;

static const char REQUEST_FMT[] =
    "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
static const char ACCEPT[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="; /* RFC 6455 §1.3's example key */

static int dial(const char *source) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) die("socket");
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (source) {
    struct sockaddr_in src = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0) die("bind");
  }
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(port)};
  inet_pton(AF_INET, host, &addr.sin_addr);
  if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("connect");
  return fd;
}

/* Reads a handshake response (blocking, 30 s at most); bytes after the head stay in c->rbuf. */
static void read_response(Conn *c) {
  char buf[4096];
  size_t len = 0;
  for (;;) {
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    if (poll(&p, 1, 30000) <= 0) {
      fprintf(stderr, "loadgen: no handshake response within 30 s\n");
      exit(2);
    }
    ssize_t n = read(c->fd, buf + len, sizeof buf - 1 - len);
    if (n <= 0) die("handshake read");
    len += (size_t)n;
    buf[len] = 0;
    char *end = strstr(buf, "\r\n\r\n");
    if (!end) {
      if (len >= sizeof buf - 1) break;
      continue;
    }
    if (strncmp(buf, "HTTP/1.1 101", 12) != 0 || !strstr(buf, ACCEPT)) break;
    size_t head = (size_t)(end + 4 - buf);
    if (c->rbuf && len > head) {
      memcpy(c->rbuf, buf + head, len - head);
      c->rlen = (uint32_t)(len - head);
    }
    return;
  }
  fprintf(stderr, "loadgen: bad handshake response: %.200s\n", buf);
  exit(2);
}

static void send_text(Conn *c, const uint8_t *payload, int size);

/* Opens conns[from..to) in batches: connect and send every request, then read every response. */
static void open_conns(Conn *conns, int from, int to, char **sources, int nsources) {
  char request[512];
  for (int b = from; b < to; b += HANDSHAKE_BATCH) {
    int e = b + HANDSHAKE_BATCH < to ? b + HANDSHAKE_BATCH : to;
    for (int i = b; i < e; i++) {
      const char *src = nsources ? sources[(i / PER_SOURCE) % nsources] : NULL;
      port = ports[i % nports];
      conns[i].fd = dial(src);
      int rlen = snprintf(request, sizeof request, REQUEST_FMT, path, host, port);
      if (write(conns[i].fd, request, (size_t)rlen) != rlen) die("handshake write");
    }
    for (int i = b; i < e; i++) read_response(&conns[i]);
    if (sio) for (int i = b; i < e; i++) send_text(&conns[i], (const uint8_t *)"40", 2); /* join the default namespace */
  }
  for (int i = from; i < to; i++) fcntl(conns[i].fd, F_SETFL, fcntl(conns[i].fd, F_GETFL) | O_NONBLOCK);
}

/* ---- Fan-out -------------------------------------------------------------------------------- */

static int nconns = 100, npubs = 4, window = 16, size = 64;
static long warmup_ms = 1000, time_ms = 3000;

static uint64_t *sent;      /* messages sent per publisher */
static int *inflight;       /* per publisher: sent and not yet back at the publisher */
static uint64_t rng = 0x9E3779B97F4A7C15ull;

static const char HEX[] = "0123456789abcdef";
static void hex(uint8_t *out, uint64_t v, int digits) {
  for (int i = digits - 1; i >= 0; i--, v >>= 4) out[i] = (uint8_t)HEX[v & 15];
}
static int unhex(const uint8_t *in, int digits, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < digits; i++) {
    uint8_t ch = in[i];
    int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (d < 0) return 0;
    v = v << 4 | (uint64_t)d;
  }
  *out = v;
  return 1;
}

/* Payload: "P" pub(4 hex) " S" seq(16 hex) " T" send time ns (16 hex), padded with '.' to `size`. */
#define PAYLOAD_MIN 41
static void publish(Conn *c) {
  int p = c->pub;
  uint8_t buf[65536 + 16];
  uint8_t *payload = buf;
  if (sio) {
    memcpy(buf, SIO_PREFIX, SIO_PREFIX_LEN);
    payload = buf + SIO_PREFIX_LEN;
  }
  memset(payload, '.', (size_t)size);
  payload[0] = 'P';
  hex(payload + 1, (uint64_t)p, 4);
  payload[5] = ' ';
  payload[6] = 'S';
  hex(payload + 7, sent[p], 16);
  payload[23] = ' ';
  payload[24] = 'T';
  hex(payload + 25, now_ns(), 16);
  if (sio) memcpy(payload + size, SIO_SUFFIX, SIO_SUFFIX_LEN);
  send_text(c, buf, size + (sio ? (int)(SIO_PREFIX_LEN + SIO_SUFFIX_LEN) : 0));
  sent[p]++;
  inflight[p]++;
}

/* Writes one masked text frame (RFC 6455 §5.3), waiting for the socket if it is full. */
static void send_text(Conn *c, const uint8_t *payload, int size) {
  uint8_t frame[14 + 65536 + 16];
  size_t h = 0;
  frame[h++] = 0x81; /* FIN, text */
  if (size < 126) {
    frame[h++] = (uint8_t)(0x80 | size);
  } else {
    frame[h++] = 0x80 | 126;
    frame[h++] = (uint8_t)(size >> 8);
    frame[h++] = (uint8_t)size;
  }
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* a fresh masking key (RFC 6455 §5.3) */
  uint8_t key[4] = {(uint8_t)rng, (uint8_t)(rng >> 8), (uint8_t)(rng >> 16), (uint8_t)(rng >> 24)};
  memcpy(frame + h, key, 4);
  h += 4;
  for (int i = 0; i < size; i++) frame[h + i] = payload[i] ^ key[i & 3];
  size_t total = h + (size_t)size, off = 0;
  while (off < total) {
    ssize_t n = write(c->fd, frame + off, total - off);
    if (n > 0) {
      off += (size_t)n;
    } else if (n < 0 && errno == EAGAIN) {
      struct pollfd pf = {.fd = c->fd, .events = POLLOUT};
      poll(&pf, 1, 1000);
    } else {
      die("publish write");
    }
  }
}

static uint64_t lat[LAT_BUCKETS];
static uint64_t delivered = 0;   /* inside the measured window */
static uint64_t received = 0;    /* over the whole run */
static uint64_t lost = 0, reordered = 0, bad = 0;
static int measuring = 0, stopping = 0;
static Conn *all_conns;
static int epfd = -1;

static void record_latency(uint64_t ns) {
  uint64_t us = ns / 1000;
  size_t b = us < LAT_LINEAR ? us : LAT_LINEAR + (us - LAT_LINEAR) / 1000;
  if (b >= LAT_BUCKETS) b = LAT_BUCKETS - 1;
  lat[b]++;
}

static double percentile(double q) {
  uint64_t total = 0;
  for (int i = 0; i < LAT_BUCKETS; i++) total += lat[i];
  if (total == 0) return -1;
  uint64_t want = q >= 1 ? total - 1 : (uint64_t)(q * (double)total), seen = 0;
  for (int i = 0; i < LAT_BUCKETS; i++) {
    seen += lat[i];
    if (seen > want) return i < LAT_LINEAR ? i : LAT_LINEAR + (double)(i - LAT_LINEAR) * 1000;
  }
  return -1;
}

static void on_message(Conn *c, const uint8_t *payload, size_t len, uint64_t t) {
  uint64_t p, seq, at;
  if (sio) {
    if (len < 2 || payload[0] != '4' || payload[1] != '2') return; /* socket.io's own packets: open, connect, ping */
    if (len < SIO_PREFIX_LEN + SIO_SUFFIX_LEN || memcmp(payload, SIO_PREFIX, SIO_PREFIX_LEN) != 0) { bad++; return; }
    payload += SIO_PREFIX_LEN;
    len -= SIO_PREFIX_LEN + SIO_SUFFIX_LEN;
  }
  if (len < PAYLOAD_MIN || payload[0] != 'P' || !unhex(payload + 1, 4, &p) || p >= (uint64_t)npubs ||
      !unhex(payload + 7, 16, &seq) || !unhex(payload + 25, 16, &at)) {
    bad++;
    return;
  }
  received++;
  uint64_t want = c->expected[p];
  if (seq != want) {
    if (seq < want) reordered++;
    else lost += seq - want;
  }
  c->expected[p] = seq + 1;
  if (measuring) {
    delivered++;
    record_latency(t > at ? t - at : 0);
  }
  if ((int)p == c->acks) {
    inflight[p]--;
    if (!stopping) publish(&all_conns[p]);
  }
}

/* Parses every whole frame in c->rbuf (server frames: unmasked). */
static void on_readable(Conn *c, uint64_t t) {
  for (;;) {
    size_t space = RBUF - c->rlen;
    ssize_t n = read(c->fd, c->rbuf + c->rlen, space);
    if (n < 0 && errno == EAGAIN) break;
    if (n <= 0) {
      fprintf(stderr, "loadgen: a connection (fd %d) was closed by the server\n", c->fd);
      epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
      bad++;
      return;
    }
    c->rlen += (uint32_t)n;
    uint8_t *b = c->rbuf;
    size_t off = 0, end = c->rlen;
    while (end - off >= 2) {
      uint8_t op = b[off] & 15;
      size_t len = b[off + 1] & 127, h = 2;
      if (len == 126) {
        if (end - off < 4) break;
        len = (size_t)b[off + 2] << 8 | b[off + 3];
        h = 4;
      } else if (len == 127) {
        fprintf(stderr, "loadgen: unexpected 64-bit frame length\n");
        exit(2);
      }
      if (end - off < h + len) break;
      if (op == 1) on_message(c, b + off + h, len, t);
      else if (op == 8) { fprintf(stderr, "loadgen: the server sent a close frame\n"); bad++; }
      off += h + len; /* pings (keepalive) are not answered: the run is shorter than their timeout */
    }
    if (off > 0) {
      memmove(b, b + off, end - off);
      c->rlen = (uint32_t)(end - off);
    }
    if ((size_t)n < space) break; /* the socket is drained */
  }
}

static int run_fanout(void) {
  Conn *conns = calloc((size_t)nconns, sizeof(Conn));
  sent = calloc((size_t)npubs, sizeof(uint64_t));
  inflight = calloc((size_t)npubs, sizeof(int));
  all_conns = conns;
  for (int i = 0; i < nconns; i++) {
    conns[i].pub = i < npubs ? i : -1;
    /* One server: a publisher's own copy paces it. Several: the copy at the next connection,
     * which is on another server, so that the window covers the path between servers. */
    int acked = nports > 1 ? i - 1 : i;
    conns[i].acks = acked >= 0 && acked < npubs ? acked : -1;
    conns[i].rbuf = malloc(RBUF);
    conns[i].expected = calloc((size_t)npubs, sizeof(uint64_t));
  }
  open_conns(conns, 0, nconns, NULL, 0);
  int ep = epfd = epoll_create1(0);
  for (int i = 0; i < nconns; i++) {
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &conns[i]};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) die("epoll_ctl");
  }
  usleep(300000); /* servers that learn of an open socket asynchronously (Deno) subscribe it meanwhile */
  uint64_t start = now_ns();
  uint64_t measure_at = start + (uint64_t)warmup_ms * 1000000ull;
  uint64_t end_at = measure_at + (uint64_t)time_ms * 1000000ull;
  uint64_t give_up = 0;
  double cpu0 = 0, cpu1 = 0, srv0 = 0, srv1 = 0, brk0 = 0, brk1 = 0;
  uint64_t m0 = 0, m1 = 0;
  for (int p = 0; p < npubs; p++)
    for (int w = 0; w < window; w++) publish(&conns[p]);
  struct epoll_event events[512];
  int complete = 0;
  for (;;) {
    int n = epoll_wait(ep, events, 512, 1);
    uint64_t t = now_ns();
    for (int i = 0; i < n; i++) on_readable(events[i].data.ptr, t);
    if (!measuring && !stopping && t >= measure_at) {
      measuring = 1;
      m0 = t, cpu0 = cpu_self(), srv0 = cpu_servers(), brk0 = cpu_broker();
    } else if (measuring && t >= end_at) {
      measuring = 0;
      stopping = 1;
      m1 = t, cpu1 = cpu_self(), srv1 = cpu_servers(), brk1 = cpu_broker();
      give_up = t + 20000000000ull;
    }
    if (stopping) {
      int pending = 0;
      for (int p = 0; p < npubs && !pending; p++) pending = inflight[p] != 0;
      for (int i = 0; i < nconns && !pending; i++)
        for (int p = 0; p < npubs && !pending; p++) pending = conns[i].expected[p] != sent[p];
      if (!pending) { complete = 1; break; }
      if (t >= give_up) break;
    }
    if (bad > 100) break;
  }
  uint64_t published = 0;
  for (int p = 0; p < npubs; p++) published += sent[p];
  uint64_t missing = 0;
  for (int i = 0; i < nconns; i++)
    for (int p = 0; p < npubs; p++) missing += sent[p] - conns[i].expected[p];
  double seconds = (double)(m1 - m0) / 1e9;
  printf("{\"deliveries\":%llu,\"seconds\":%.6f,\"loaderCpu\":%.4f,\"serverCpu\":%.4f,\"brokerCpu\":%.4f,"
         "\"latency\":{\"p50\":%.0f,\"p90\":%.0f,\"p99\":%.0f,\"max\":%.0f},"
         "\"published\":%llu,\"received\":%llu,\"expected\":%llu,\"lost\":%llu,\"reordered\":%llu,\"missing\":%llu,"
         "\"bad\":%llu,\"complete\":%s}\n",
         (unsigned long long)delivered, seconds, cpu1 - cpu0, server_pid_count ? srv1 - srv0 : -1.0, brk1 - brk0,
         percentile(0.5), percentile(0.9), percentile(0.99), percentile(1.0),
         (unsigned long long)published, (unsigned long long)received, (unsigned long long)(published * (uint64_t)nconns),
         (unsigned long long)lost, (unsigned long long)reordered, (unsigned long long)missing,
         (unsigned long long)bad, complete ? "true" : "false");
  fflush(stdout);
  return complete && lost == 0 && reordered == 0 && bad == 0 ? 0 : 1;
}

/* ---- Idle connections ----------------------------------------------------------------------- */

static int run_idle(char **sources, int nsources) {
  int cap = 1 << 20, open = 0;
  Conn *conns = calloc((size_t)cap, sizeof(Conn));
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    int n;
    if (sscanf(line, "open %d", &n) == 1) {
      if (open + n > cap) n = cap - open;
      open_conns(conns, open, open + n, sources, nsources);
      open += n;
    } else if (strncmp(line, "close", 5) == 0) {
      for (int i = 0; i < open; i++) close(conns[i].fd);
      open = 0;
    } else {
      continue;
    }
    printf("{\"open\":%d}\n", open);
    fflush(stdout);
  }
  return 0;
}

/* ---- Main ----------------------------------------------------------------------------------- */

static const char *opt(int argc, char **argv, const char *name) {
  size_t len = strlen(name);
  for (int i = 1; i < argc; i++)
    if (strncmp(argv[i], "--", 2) == 0 && strncmp(argv[i] + 2, name, len) == 0 && argv[i][2 + len] == '=')
      return argv[i] + 3 + len;
  return NULL;
}

int main(int argc, char **argv) {
  const char *v;
  if ((v = opt(argc, argv, "host"))) host = v;
  for (int i = 1; i < argc; i++) if (strcmp(argv[i], "--sio") == 0) sio = 1, path = "/socket.io/?EIO=4&transport=websocket";
  if ((v = opt(argc, argv, "path"))) path = v;
  if ((v = opt(argc, argv, "port"))) {
    char *copy = strdup(v);
    for (char *s = strtok(copy, ","); s && nports < 16; s = strtok(NULL, ",")) ports[nports++] = atoi(s);
    port = ports[0];
  }
  if ((v = opt(argc, argv, "conns"))) nconns = atoi(v);
  if ((v = opt(argc, argv, "pubs"))) npubs = atoi(v);
  if ((v = opt(argc, argv, "window"))) window = atoi(v);
  if ((v = opt(argc, argv, "size"))) size = atoi(v);
  if ((v = opt(argc, argv, "warmup"))) warmup_ms = atol(v);
  if ((v = opt(argc, argv, "time"))) time_ms = atol(v);
  if ((v = opt(argc, argv, "broker-pid"))) broker_pid = atoi(v);
  if ((v = opt(argc, argv, "server-pids"))) {
    char *copy = strdup(v);
    for (char *s = strtok(copy, ","); s && server_pid_count < 16; s = strtok(NULL, ",")) server_pids[server_pid_count++] = atoi(s);
  }
  if (port <= 0 || nconns < 1 || npubs < 1 || npubs > nconns || npubs > 65535 || window < 1 || size < PAYLOAD_MIN || size > 65535) {
    fprintf(stderr, "loadgen: bad options (size must be %d..65535 bytes)\n", PAYLOAD_MIN);
    return 2;
  }
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0) { rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl); }
  v = opt(argc, argv, "mode");
  if (v && strcmp(v, "idle") == 0) {
    char *sources[64];
    int nsources = 0;
    if ((v = opt(argc, argv, "sources"))) {
      char *copy = strdup(v);
      for (char *s = strtok(copy, ","); s && nsources < 64; s = strtok(NULL, ",")) sources[nsources++] = s;
    }
    return run_idle(sources, nsources);
  }
  return run_fanout();
}
