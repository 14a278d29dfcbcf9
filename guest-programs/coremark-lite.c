/* A CoreMark-like workload of our own (not EEMBC CoreMark): each iteration
 * runs a linked-list find/reverse/sort, a small integer matrix multiply and
 * add, a state machine scanning a string of numbers, and folds every result
 * into a CRC-16. The final CRC is checked against the value the same code
 * gives on QEMU and on the host, so a wrong instruction shows up as a wrong
 * checksum. */
#include "runtime.h"
#include "csr.h"

#define ITERS 1200
#define EXPECTED_CRC 0x9e4cu

/* ---- CRC-16/CCITT, bitwise, as CoreMark's crcu8 */
static uint16_t crc8(uint8_t data, uint16_t crc)
{
  for (int i = 0; i < 8; i++) {
    uint16_t x = (uint16_t)((data ^ crc) & 1);
    data >>= 1;
    if (x) {
      crc ^= 0x4002;
      crc = (uint16_t)((crc >> 1) | 0x8000);
    } else {
      crc >>= 1;
    }
  }
  return crc;
}

static uint16_t crc16(uint16_t v, uint16_t crc)
{
  crc = crc8((uint8_t)v, crc);
  return crc8((uint8_t)(v >> 8), crc);
}

static uint16_t crc32w(uint32_t v, uint16_t crc)
{
  crc = crc16((uint16_t)v, crc);
  return crc16((uint16_t)(v >> 16), crc);
}

/* ---- linked list */
#define LIST_LEN 96

struct node {
  struct node *next;
  int16_t value;
  int16_t idx;
};

static struct node nodes[LIST_LEN];

static struct node *list_init(uint32_t seed)
{
  for (int i = 0; i < LIST_LEN; i++) {
    seed = seed * 1103515245u + 12345u;
    nodes[i].value = (int16_t)(seed >> 16);
    nodes[i].idx = (int16_t)i;
    nodes[i].next = i + 1 < LIST_LEN ? &nodes[i + 1] : 0;
  }
  return &nodes[0];
}

static struct node *list_find(struct node *l, int16_t value)
{
  while (l && l->value != value)
    l = l->next;
  return l;
}

static struct node *list_reverse(struct node *l)
{
  struct node *prev = 0;
  while (l) {
    struct node *next = l->next;
    l->next = prev;
    prev = l;
    l = next;
  }
  return prev;
}

static int cmp_value(const struct node *a, const struct node *b)
{
  return a->value - b->value;
}

static int cmp_idx(const struct node *a, const struct node *b)
{
  return a->idx - b->idx;
}

/* Bottom-up merge sort on a singly linked list (no recursion, no malloc). */
static struct node *list_sort(struct node *list, int (*cmp)(const struct node *, const struct node *))
{
  for (int insize = 1;; insize *= 2) {
    struct node *p = list, *tail = 0;
    list = 0;
    int merges = 0;
    while (p) {
      merges++;
      struct node *q = p;
      int psize = 0;
      for (int i = 0; i < insize && q; i++) {
        psize++;
        q = q->next;
      }
      int qsize = insize;
      while (psize > 0 || (qsize > 0 && q)) {
        struct node *e;
        if (psize == 0) {
          e = q; q = q->next; qsize--;
        } else if (qsize == 0 || !q || cmp(p, q) <= 0) {
          e = p; p = p->next; psize--;
        } else {
          e = q; q = q->next; qsize--;
        }
        if (tail)
          tail->next = e;
        else
          list = e;
        tail = e;
      }
      p = q;
    }
    tail->next = 0;
    if (merges <= 1)
      return list;
  }
}

static uint16_t bench_list(struct node **head, uint32_t iter, uint16_t crc)
{
  struct node *l = *head;
  int found = 0, missed = 0;
  for (int i = 0; i < 8; i++) {
    int16_t want = nodes[(iter * 7 + i * 13) % LIST_LEN].value;
    if ((i & 3) == 3)
      want = (int16_t)(want ^ 0x5a5a);
    struct node *n = list_find(l, want);
    if (n) {
      found++;
      crc = crc16((uint16_t)n->idx, crc);
    } else {
      missed++;
    }
  }
  l = list_reverse(l);
  l = list_sort(l, cmp_value);
  for (struct node *n = l; n; n = n->next)
    crc = crc16((uint16_t)n->value, crc);
  /* Perturb, so the next iteration sorts different data. */
  for (struct node *n = l; n; n = n->next)
    n->value = (int16_t)(n->value + (int16_t)(iter * 3 + 1) * (n->idx & 7));
  l = list_sort(l, cmp_idx);
  crc = crc16((uint16_t)(found * 256 + missed), crc);
  *head = l;
  return crc;
}

/* ---- matrix */
#define MAT_N 14

static int16_t mat_a[MAT_N][MAT_N], mat_b[MAT_N][MAT_N];
static int32_t mat_c[MAT_N][MAT_N];

static void matrix_init(uint32_t seed)
{
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++) {
      seed = seed * 214013u + 2531011u;
      mat_a[i][j] = (int16_t)((seed >> 16) & 0x3ff) - 512;
      seed = seed * 214013u + 2531011u;
      mat_b[i][j] = (int16_t)((seed >> 16) & 0x3ff) - 512;
    }
}

static uint16_t bench_matrix(int16_t k, uint16_t crc)
{
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++)
      mat_a[i][j] = (int16_t)(mat_a[i][j] + k);
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++) {
      int32_t s = 0;
      for (int x = 0; x < MAT_N; x++)
        s += (int32_t)mat_a[i][x] * mat_b[x][j];
      mat_c[i][j] = s;
    }
  int32_t sum = 0;
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++) {
      sum += mat_c[i][j] >> 2;
      if (sum > 1000000)
        sum -= 999983;
      else if (sum < -1000000)
        sum += 999983;
    }
  for (int i = 0; i < MAT_N; i++)
    for (int j = 0; j < MAT_N; j++)
      mat_a[i][j] = (int16_t)(mat_a[i][j] - k);
  return crc32w((uint32_t)sum, crc);
}

/* ---- state machine over numbers in text */
enum state { S_START, S_INT, S_FLOAT, S_EXP, S_EXP_SIGN, S_SCI, S_INVALID, S_COUNT };

static const char input_text[] =
    "5012,1234,-874,+122,7.3e-4,0.0001,-.5,22e7,3.1415,x12,,99..1,1e+9,"
    "-0,00017,6.02e23,4-4,.e1,abc,123456,-77.0e-2,8e,+,0x1f,1.5E3,";

static uint8_t text[sizeof input_text];

static int is_digit(char c)
{
  return c >= '0' && c <= '9';
}

static enum state next_state(enum state s, char c)
{
  switch (s) {
  case S_START:
    if (is_digit(c)) return S_INT;
    if (c == '+' || c == '-') return S_INT;
    if (c == '.') return S_FLOAT;
    return S_INVALID;
  case S_INT:
    if (is_digit(c)) return S_INT;
    if (c == '.') return S_FLOAT;
    if (c == 'e' || c == 'E') return S_EXP;
    return S_INVALID;
  case S_FLOAT:
    if (is_digit(c)) return S_FLOAT;
    if (c == 'e' || c == 'E') return S_EXP;
    return S_INVALID;
  case S_EXP:
    if (c == '+' || c == '-') return S_EXP_SIGN;
    if (is_digit(c)) return S_SCI;
    return S_INVALID;
  case S_EXP_SIGN:
    if (is_digit(c)) return S_SCI;
    return S_INVALID;
  case S_SCI:
    if (is_digit(c)) return S_SCI;
    return S_INVALID;
  default:
    return S_INVALID;
  }
}

static uint16_t bench_state(uint32_t iter, uint16_t crc)
{
  uint32_t final_count[S_COUNT] = {0};
  uint32_t transitions = 0;
  enum state s = S_START;
  for (uint32_t i = 0; text[i]; i++) {
    char c = (char)text[i];
    if (c == ',') {
      final_count[s]++;
      s = S_START;
      continue;
    }
    enum state n = next_state(s, c);
    if (n != s)
      transitions++;
    s = n;
  }
  for (int i = 0; i < S_COUNT; i++)
    crc = crc16((uint16_t)final_count[i], crc);
  crc = crc16((uint16_t)transitions, crc);
  /* Corrupt a character and undo it next time round: different input each pass. */
  uint32_t pos = (iter * 17) % (sizeof text - 1);
  text[pos] = (uint8_t)(text[pos] ^ 0x04);
  return crc;
}

int main(void)
{
  memcpy(text, input_text, sizeof text);
  struct node *list = list_init(0x1234);
  matrix_init(0x5678);
  uint16_t crc = 0;
  for (uint32_t i = 0; i < ITERS; i++) {
    crc = bench_list(&list, i, crc);
    crc = bench_matrix((int16_t)(i & 15), crc);
    crc = bench_state(i, crc);
  }

  rt_puts("coremark-lite: ");
  rt_print_udec(ITERS);
  rt_puts(" iterations, crc ");
  rt_print_hex(crc);
  if (rt_paging) {
    rt_puts(", S-mode satp=");
    rt_print_hex((uint32_t)csr_read(satp));
  }
  rt_putchar('\n');
  if (crc != EXPECTED_CRC) {
    rt_puts("coremark-lite: checksum mismatch, expected ");
    rt_print_hex(EXPECTED_CRC);
    rt_putchar('\n');
    return 1;
  }
  return 0;
}
