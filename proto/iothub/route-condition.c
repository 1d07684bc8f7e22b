/* Route conditions: the WHERE part of a route (IoT Hub's routing query subset) */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proto/iothub/route-condition.h"
#include "proto/util/cleanup.h"
#include "proto/util/shown.h"

/*
 * A recursive-descent parser over a one-token lookahead lexer builds a small
 * tree; AND and OR chains are one n-ary node each, so the tree is only as
 * deep as the nesting of '(', NOT and IS_DEFINED, which the parser caps at
 * ROUTE_CONDITION_DEPTH_MAX. Evaluation walks that tree without allocating.
 * Lexer, parser and evaluator stay in one file (~850 lines) because they
 * share the token, node and value types, which no other file may see.
 */

#define NUMBER_TEXT_MAX 127u
#define SPAN_SHOWN_MAX 32u

typedef enum NodeKind {
        NODE_LITERAL,
        NODE_PROPERTY,   /* an application property */
        NODE_SYSTEM,     /* a system property */
        NODE_IS_DEFINED,
        NODE_NOT,
        NODE_AND,
        NODE_OR,
        NODE_COMPARE,
} NodeKind;

typedef enum CompareOp {
        OP_EQ,
        OP_NE,
        OP_LT,
        OP_LE,
        OP_GT,
        OP_GE,
} CompareOp;

typedef enum ValueType {
        VALUE_UNDEFINED,
        VALUE_BOOL,
        VALUE_NUMBER,
        VALUE_STRING,
} ValueType;

typedef struct Value {
        ValueType type;
        bool boolean;
        double number;
        const char *string;
} Value;

#define UNDEFINED ((Value){ .type = VALUE_UNDEFINED })

struct RouteCondition {
        NodeKind kind;
        CompareOp op;               /* NODE_COMPARE */
        Value literal;              /* NODE_LITERAL; a string points into text */
        char *text;                 /* NODE_LITERAL string; NODE_PROPERTY name */
        RouteSystemProperty system; /* NODE_SYSTEM; _ROUTE_SYS_INVALID: unknown, always undefined */
        RouteCondition **children;  /* NOT, IS_DEFINED: 1; COMPARE: 2; AND, OR: 2 or more */
        size_t n_children;
};

/* ---- numbers: one syntax for literals and for strings compared with numbers ---- */

static size_t span_digits(const char *s, size_t len, size_t i) {
        while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        return i;
}

/* Length of the longest number at s ("-12.5e3"), 0 if none. */
static size_t number_span(const char *s, size_t len) {
        size_t i = 0, j;

        if (i < len && s[i] == '-')
                i++;
        j = span_digits(s, len, i);
        bool digits = j > i;
        i = j;
        if (i + 1 < len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9') {
                i = span_digits(s, len, i + 1);
                digits = true;
        }
        if (!digits)
                return 0;
        if (i < len && (s[i] == 'e' || s[i] == 'E')) {
                size_t k = i + 1;
                if (k < len && (s[k] == '+' || s[k] == '-'))
                        k++;
                j = span_digits(s, len, k);
                if (j > k)
                        i = j;
        }
        return i;
}

static int number_parse(const char *s, size_t len, double *ret) {
        char buf[NUMBER_TEXT_MAX + 1];

        if (len == 0 || len > NUMBER_TEXT_MAX || number_span(s, len) != len)
                return -EINVAL;
        memcpy(buf, s, len);
        buf[len] = 0;
        /* The syntax is checked above; strtod() only converts (the daemons run in the C locale). */
        *ret = strtod(buf, NULL);
        return 0;
}

/* ---- lexer ---- */

typedef enum TokenKind {
        TOK_END,
        TOK_LPAREN,
        TOK_RPAREN,
        TOK_COMPARE,
        TOK_STRING,
        TOK_NUMBER,
        TOK_NAME,
        TOK_SYSTEM,
        TOK_AND,
        TOK_OR,
        TOK_NOT,
        TOK_TRUE,
        TOK_FALSE,
} TokenKind;

typedef struct Token {
        TokenKind kind;
        size_t start, end;   /* offsets in the text */
        CompareOp op;        /* TOK_COMPARE */
        double number;       /* TOK_NUMBER */
        char *string;        /* TOK_STRING: decoded, owned */
} Token;

typedef struct Parser {
        const char *s;
        size_t len;
        size_t start;        /* where the condition began */
        size_t pos;          /* lexer position */
        unsigned depth;
        Token tok;           /* the lookahead */
        char *error;
} Parser;

static bool is_name_start(char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (unsigned char) c >= 0x80;
}

static bool is_name_char(char c) {
        return is_name_start(c) || (c >= '0' && c <= '9') || c == '.' || c == '-';
}

static bool is_space(char c) {
        return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* "'INTO'" or "end of input": user text made safe for a one-line message. */
static void describe(const Parser *p, size_t start, size_t end, char out[static SPAN_SHOWN_MAX + 8]) {
        shown_span(p->s, p->len, start, end, SPAN_SHOWN_MAX, "end of input", out);
}

static int parser_fail(Parser *p, size_t at, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Records the first error; returns -EINVAL (or -ENOMEM). */
static int parser_fail(Parser *p, size_t at, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int r = fail_at_position(&p->error, at, fmt, ap);
        va_end(ap);
        return r;
}

static int parser_expected(Parser *p, const char *what) {
        char found[SPAN_SHOWN_MAX + 8];
        describe(p, p->tok.start, p->tok.end, found);
        return parser_fail(p, p->tok.start, "expected %s, found %s", what, found);
}

static void utf8_put(char *buf, size_t *n, uint32_t cp) {
        if (cp < 0x80)
                buf[(*n)++] = (char) cp;
        else if (cp < 0x800) {
                buf[(*n)++] = (char) (0xc0 | (cp >> 6));
                buf[(*n)++] = (char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
                buf[(*n)++] = (char) (0xe0 | (cp >> 12));
                buf[(*n)++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                buf[(*n)++] = (char) (0x80 | (cp & 0x3f));
        } else {
                buf[(*n)++] = (char) (0xf0 | (cp >> 18));
                buf[(*n)++] = (char) (0x80 | ((cp >> 12) & 0x3f));
                buf[(*n)++] = (char) (0x80 | ((cp >> 6) & 0x3f));
                buf[(*n)++] = (char) (0x80 | (cp & 0x3f));
        }
}

static int hex4(const char *s, size_t len, size_t i, uint32_t *ret) {
        uint32_t v = 0;
        if (i + 4 > len)
                return -EINVAL;
        for (size_t k = i; k < i + 4; k++) {
                char c = s[k];
                int d = c >= '0' && c <= '9' ? c - '0' :
                        c >= 'a' && c <= 'f' ? c - 'a' + 10 :
                        c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
                if (d < 0)
                        return -EINVAL;
                v = v * 16 + (uint32_t) d;
        }
        *ret = v;
        return 0;
}

/* A quoted string at p->pos; the quote doubles or is backslash-escaped inside. */
static int lex_string(Parser *p, Token *t) {
        const char *s = p->s;
        char quote = s[p->pos];
        size_t i = p->pos + 1, n = 0;

        /* Decoding never grows the text (\uXXXX is 6 bytes for at most 4). */
        _cleanup_free_ char *buf = malloc(p->len - p->pos + 1);
        if (!buf)
                return -ENOMEM;

        for (;;) {
                if (i >= p->len || s[i] == 0)
                        return parser_fail(p, t->start, "unterminated string");
                char c = s[i];
                if (c == quote) {
                        if (i + 1 < p->len && s[i + 1] == quote) {
                                buf[n++] = quote;
                                i += 2;
                                continue;
                        }
                        i++;
                        break;
                }
                if (c != '\\') {
                        buf[n++] = c;
                        i++;
                        continue;
                }
                if (i + 1 >= p->len)
                        return parser_fail(p, t->start, "unterminated string");
                char e = s[i + 1];
                static const char from[] = "\"'\\/bfnrt", to[] = "\"'\\/\b\f\n\r\t";
                const char *k = e ? strchr(from, e) : NULL;
                if (k) {
                        buf[n++] = to[k - from];
                        i += 2;
                        continue;
                }
                if (e != 'u')
                        return parser_fail(p, i, "invalid escape in string (\\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
                uint32_t cp, lo;
                if (hex4(s, p->len, i + 2, &cp) < 0)
                        return parser_fail(p, i, "invalid \\u escape (four hex digits)");
                size_t esc = i;
                i += 6;
                if (cp >= 0xd800 && cp <= 0xdbff) {
                        if (i + 1 < p->len && s[i] == '\\' && s[i + 1] == 'u' && hex4(s, p->len, i + 2, &lo) >= 0 &&
                            lo >= 0xdc00 && lo <= 0xdfff) {
                                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
                                i += 6;
                        } else
                                return parser_fail(p, esc, "unpaired surrogate in \\u escape");
                } else if (cp >= 0xdc00 && cp <= 0xdfff)
                        return parser_fail(p, esc, "unpaired surrogate in \\u escape");
                else if (cp == 0)
                        return parser_fail(p, esc, "\\u0000 is not allowed in a string");
                utf8_put(buf, &n, cp);
        }
        buf[n] = 0;
        t->kind = TOK_STRING;
        t->string = TAKE_PTR(buf);
        p->pos = i;
        return 0;
}

static const struct {
        const char *word;
        TokenKind kind;
} keywords[] = {
        { "AND", TOK_AND }, { "OR", TOK_OR }, { "NOT", TOK_NOT }, { "TRUE", TOK_TRUE }, { "FALSE", TOK_FALSE },
};

/* Replaces the lookahead with the next token. */
static int lex_next(Parser *p) {
        const char *s = p->s;
        Token t = {};

        free(p->tok.string);
        p->tok = (Token){ .kind = TOK_END, .start = p->len, .end = p->len };

        while (p->pos < p->len && is_space(s[p->pos]))
                p->pos++;
        t.start = p->pos;
        if (p->pos >= p->len) {
                p->tok = (Token){ .kind = TOK_END, .start = p->len, .end = p->len };
                return 0;
        }

        char c = s[p->pos], c1 = p->pos + 1 < p->len ? s[p->pos + 1] : 0;
        int r;
        size_t n;

        if (c == '(' || c == ')') {
                t.kind = c == '(' ? TOK_LPAREN : TOK_RPAREN;
                p->pos++;
        } else if (c == '=' || c == '<' || c == '>' || (c == '!' && c1 == '=')) {
                t.kind = TOK_COMPARE;
                if (c == '=')
                        t.op = OP_EQ, p->pos += 1;
                else if (c == '!')
                        t.op = OP_NE, p->pos += 2;
                else if (c == '<' && c1 == '>')
                        t.op = OP_NE, p->pos += 2;
                else if (c1 == '=')
                        t.op = c == '<' ? OP_LE : OP_GE, p->pos += 2;
                else
                        t.op = c == '<' ? OP_LT : OP_GT, p->pos += 1;
        } else if (c == '\'' || c == '"') {
                r = lex_string(p, &t);
                if (r < 0)
                        return r;
        } else if ((n = number_span(s + p->pos, p->len - p->pos)) > 0) {
                if (p->pos + n < p->len && is_name_char(s[p->pos + n]))
                        return parser_fail(p, t.start, "invalid number");
                if (number_parse(s + p->pos, n, &t.number) < 0)
                        return parser_fail(p, t.start, "number too long");
                t.kind = TOK_NUMBER;
                p->pos += n;
        } else if (c == '$') {
                size_t i = p->pos + 1;
                while (i < p->len && is_name_char(s[i]))
                        i++;
                if (i == p->pos + 1)
                        return parser_fail(p, t.start, "expected a system property name after '$'");
                n = i - p->pos - 1;
                if (n >= 4 && strncmp(s + p->pos + 1, "body", 4) == 0 && (n == 4 || s[p->pos + 5] == '.'))
                        return parser_fail(p, t.start, "$body queries are not supported");
                t.kind = TOK_SYSTEM;
                p->pos = i;
        } else if (is_name_start(c)) {
                size_t i = p->pos;
                while (i < p->len && is_name_char(s[i]))
                        i++;
                t.kind = TOK_NAME;
                for (size_t k = 0; k < ELEMENTSOF(keywords); k++)
                        if (strlen(keywords[k].word) == i - p->pos &&
                            strncasecmp(keywords[k].word, s + p->pos, i - p->pos) == 0)
                                t.kind = keywords[k].kind;
                p->pos = i;
        } else {
                char found[SPAN_SHOWN_MAX + 8];
                describe(p, p->pos, p->pos + 1, found);
                return parser_fail(p, t.start, "unexpected character %s", found);
        }
        t.end = p->pos;
        p->tok = t;
        return 0;
}

/* Consumes the lookahead: the condition's bytes so far must stay within the limit. */
static int parser_take(Parser *p) {
        if (p->tok.end - p->start > ROUTE_CONDITION_MAX)
                return parser_fail(p, p->tok.start, "condition longer than %u bytes", ROUTE_CONDITION_MAX);
        return lex_next(p);
}

static bool token_is_word(const Parser *p, const char *word) {
        size_t n = p->tok.end - p->tok.start;
        return p->tok.kind == TOK_NAME && strlen(word) == n && strncasecmp(p->s + p->tok.start, word, n) == 0;
}

/* ---- tree ---- */

RouteCondition *route_condition_free(RouteCondition *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n_children; i++)
                route_condition_free(c->children[i]);
        free(c->children);
        free(c->text);
        free(c);
        return NULL;
}

static int node_new(NodeKind kind, RouteCondition **ret) {
        RouteCondition *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->kind = kind;
        c->system = _ROUTE_SYS_INVALID;
        *ret = c;
        return 0;
}

/* Takes child (also on failure). */
static int node_add(RouteCondition *c, RouteCondition *child) {
        RouteCondition **children = realloc(c->children, (c->n_children + 1) * sizeof(*children));
        if (!children) {
                route_condition_free(child);
                return -ENOMEM;
        }
        c->children = children;
        c->children[c->n_children++] = child;
        return 0;
}

static int node_wrap(NodeKind kind, RouteCondition *child, RouteCondition **ret) {
        RouteCondition *c;
        int r = node_new(kind, &c);
        if (r < 0) {
                route_condition_free(child);
                return r;
        }
        r = node_add(c, child);
        if (r < 0) {
                route_condition_free(c);
                return r;
        }
        *ret = c;
        return 0;
}

/* ---- parser ---- */

static int parse_or(Parser *p, RouteCondition **ret);

/* Consumes '(', NOT or IS_DEFINED, which nest: one level deeper, up to the cap. The caller's p->depth-- leaves it. */
static int parser_enter(Parser *p) {
        if (++p->depth > ROUTE_CONDITION_DEPTH_MAX)
                return parser_fail(p, p->tok.start, "nested deeper than %u levels", ROUTE_CONDITION_DEPTH_MAX);
        return parser_take(p);
}

/* Consumes a token of kind, or fails with "expected what". */
static int parser_expect(Parser *p, TokenKind kind, const char *what) {
        if (p->tok.kind != kind)
                return parser_expected(p, what);
        return parser_take(p);
}

static int parse_property(Parser *p, RouteCondition **ret) {
        _cleanup_(route_condition_freep) RouteCondition *c = NULL;
        int r;

        if (p->tok.kind == TOK_SYSTEM) {
                r = node_new(NODE_SYSTEM, &c);
                if (r < 0)
                        return r;
                c->system = route_system_property_from_string(p->s + p->tok.start + 1, p->tok.end - p->tok.start - 1);
        } else if (p->tok.kind == TOK_NAME) {
                r = node_new(NODE_PROPERTY, &c);
                if (r < 0)
                        return r;
                c->text = strndup(p->s + p->tok.start, p->tok.end - p->tok.start);
                if (!c->text)
                        return -ENOMEM;
        } else
                return parser_expected(p, "a property");
        r = parser_take(p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int parse_is_defined(Parser *p, RouteCondition **ret) {
        _cleanup_(route_condition_freep) RouteCondition *arg = NULL;
        int r;

        r = parser_enter(p); /* IS_DEFINED */
        if (r < 0)
                return r;
        r = parser_expect(p, TOK_LPAREN, "'(' after IS_DEFINED");
        if (r < 0)
                return r;
        r = parse_property(p, &arg);
        if (r < 0)
                return r;
        r = parser_expect(p, TOK_RPAREN, "')'");
        if (r < 0)
                return r;
        p->depth--;
        return node_wrap(NODE_IS_DEFINED, TAKE_PTR(arg), ret);
}

static int parse_operand(Parser *p, RouteCondition **ret) {
        _cleanup_(route_condition_freep) RouteCondition *c = NULL;
        int r;

        switch (p->tok.kind) {
        case TOK_LPAREN:
                r = parser_enter(p);
                if (r < 0)
                        return r;
                r = parse_or(p, &c);
                if (r < 0)
                        return r;
                r = parser_expect(p, TOK_RPAREN, "AND, OR or ')'");
                if (r < 0)
                        return r;
                p->depth--;
                *ret = TAKE_PTR(c);
                return 0;

        case TOK_STRING:
        case TOK_NUMBER:
        case TOK_TRUE:
        case TOK_FALSE:
                r = node_new(NODE_LITERAL, &c);
                if (r < 0)
                        return r;
                if (p->tok.kind == TOK_STRING) {
                        c->text = TAKE_PTR(p->tok.string);
                        c->literal = (Value){ .type = VALUE_STRING, .string = c->text };
                } else if (p->tok.kind == TOK_NUMBER)
                        c->literal = (Value){ .type = VALUE_NUMBER, .number = p->tok.number };
                else
                        c->literal = (Value){ .type = VALUE_BOOL, .boolean = p->tok.kind == TOK_TRUE };
                r = parser_take(p);
                if (r < 0)
                        return r;
                *ret = TAKE_PTR(c);
                return 0;

        case TOK_SYSTEM:
                return parse_property(p, ret);

        case TOK_NAME: {
                /* The route's keywords end a condition; they are never property names. */
                static const char *const reserved[] = { "FROM", "WHERE", "INTO", "SELECT" };
                for (size_t i = 0; i < ELEMENTSOF(reserved); i++)
                        if (token_is_word(p, reserved[i]))
                                return parser_expected(p, "a property, a literal or '('");

                /* A name followed by '(' is a function call. */
                size_t after = p->tok.end;
                while (after < p->len && is_space(p->s[after]))
                        after++;
                if (token_is_word(p, "IS_DEFINED"))
                        return parse_is_defined(p, ret);
                if (after < p->len && p->s[after] == '(') {
                        char name[SPAN_SHOWN_MAX + 8];
                        describe(p, p->tok.start, p->tok.end, name);
                        return parser_fail(p, p->tok.start, "unsupported function %s (only IS_DEFINED)", name);
                }
                return parse_property(p, ret);
        }

        default:
                return parser_expected(p, "a property, a literal or '('");
        }
}

static int parse_compare(Parser *p, RouteCondition **ret) {
        _cleanup_(route_condition_freep) RouteCondition *left = NULL, *right = NULL, *c = NULL;
        int r;

        r = parse_operand(p, &left);
        if (r < 0)
                return r;
        if (p->tok.kind != TOK_COMPARE) {
                *ret = TAKE_PTR(left);
                return 0;
        }
        CompareOp op = p->tok.op;
        r = parser_take(p);
        if (r < 0)
                return r;
        r = parse_operand(p, &right);
        if (r < 0)
                return r;
        if (p->tok.kind == TOK_COMPARE)
                return parser_fail(p, p->tok.start, "comparisons do not chain: use AND, or parentheses");

        r = node_new(NODE_COMPARE, &c);
        if (r < 0)
                return r;
        c->op = op;
        r = node_add(c, TAKE_PTR(left));
        if (r < 0)
                return r;
        r = node_add(c, TAKE_PTR(right));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(c);
        return 0;
}

static int parse_not(Parser *p, RouteCondition **ret) {
        _cleanup_(route_condition_freep) RouteCondition *child = NULL;
        int r;

        if (p->tok.kind != TOK_NOT)
                return parse_compare(p, ret);
        r = parser_enter(p);
        if (r < 0)
                return r;
        r = parse_not(p, &child);
        if (r < 0)
                return r;
        p->depth--;
        return node_wrap(NODE_NOT, TAKE_PTR(child), ret);
}

typedef int (*ParseFn)(Parser *p, RouteCondition **ret);

/* operand (OP operand)*, as one n-ary node when there is more than one. */
static int parse_chain(Parser *p, TokenKind op, NodeKind kind, ParseFn operand, RouteCondition **ret) {
        _cleanup_(route_condition_freep) RouteCondition *first = NULL, *c = NULL;
        int r;

        r = operand(p, &first);
        if (r < 0)
                return r;
        while (p->tok.kind == op) {
                RouteCondition *next = NULL;
                if (!c) {
                        r = node_new(kind, &c);
                        if (r < 0)
                                return r;
                        r = node_add(c, TAKE_PTR(first));
                        if (r < 0)
                                return r;
                }
                r = parser_take(p);
                if (r < 0)
                        return r;
                r = operand(p, &next);
                if (r < 0)
                        return r;
                r = node_add(c, next);
                if (r < 0)
                        return r;
        }
        *ret = c ? TAKE_PTR(c) : TAKE_PTR(first);
        return 0;
}

static int parse_and(Parser *p, RouteCondition **ret) {
        return parse_chain(p, TOK_AND, NODE_AND, parse_not, ret);
}

static int parse_or(Parser *p, RouteCondition **ret) {
        return parse_chain(p, TOK_OR, NODE_OR, parse_and, ret);
}

int route_condition_parse(const char *s, size_t len, size_t start, RouteCondition **ret, size_t *ret_end,
                          char **ret_error) {
        _cleanup_(route_condition_freep) RouteCondition *c = NULL;
        Parser p = { .s = s, .len = len, .start = start, .pos = start };
        int r;

        if ((!s && len > 0) || start > len || !ret)
                return -EINVAL;

        r = lex_next(&p);
        if (r >= 0)
                r = parse_or(&p, &c);
        free(p.tok.string);
        if (r == -EINVAL && !p.error)
                r = parser_fail(&p, start, "invalid condition");
        r = error_hand_over(r, &p.error, ret_error);
        if (r < 0)
                return r;
        if (ret_end)
                *ret_end = p.tok.start;
        *ret = TAKE_PTR(c);
        return 0;
}

/* ---- evaluation ---- */

typedef enum Truth {
        TRUTH_FALSE,
        TRUTH_TRUE,
        TRUTH_UNDEFINED,
} Truth;

static Truth truth_of(Value v) {
        if (v.type != VALUE_BOOL)
                return TRUTH_UNDEFINED;
        return v.boolean ? TRUTH_TRUE : TRUTH_FALSE;
}

static Value value_of(Truth t) {
        if (t == TRUTH_UNDEFINED)
                return UNDEFINED;
        return (Value){ .type = VALUE_BOOL, .boolean = t == TRUTH_TRUE };
}

/* A string that is wholly a number becomes that number; any other string, undefined. */
static Value as_number(Value v) {
        double d;
        if (number_parse(v.string, strlen(v.string), &d) < 0)
                return UNDEFINED;
        return (Value){ .type = VALUE_NUMBER, .number = d };
}

static Value compare(CompareOp op, Value a, Value b) {
        int cmp;

        if (a.type == VALUE_STRING && b.type == VALUE_NUMBER)
                a = as_number(a);
        else if (a.type == VALUE_NUMBER && b.type == VALUE_STRING)
                b = as_number(b);
        if (a.type == VALUE_UNDEFINED || b.type == VALUE_UNDEFINED || a.type != b.type)
                return UNDEFINED;

        switch (a.type) {
        case VALUE_BOOL:
                if (op != OP_EQ && op != OP_NE)
                        return UNDEFINED;
                cmp = a.boolean != b.boolean;
                break;
        case VALUE_NUMBER:
                cmp = a.number < b.number ? -1 : a.number > b.number ? 1 : 0;
                break;
        case VALUE_STRING:
                cmp = strcmp(a.string, b.string);
                break;
        default:
                return UNDEFINED;
        }

        bool result;
        switch (op) {
        case OP_EQ:
                result = cmp == 0;
                break;
        case OP_NE:
                result = cmp != 0;
                break;
        case OP_LT:
                result = cmp < 0;
                break;
        case OP_LE:
                result = cmp <= 0;
                break;
        case OP_GT:
                result = cmp > 0;
                break;
        default:
                result = cmp >= 0;
                break;
        }
        return (Value){ .type = VALUE_BOOL, .boolean = result };
}

static Value string_or_undefined(const char *s) {
        return s ? (Value){ .type = VALUE_STRING, .string = s } : UNDEFINED;
}

/* Recursion is bounded by the parser's depth limit (AND/OR chains are flat). */
static Value eval(const RouteCondition *c, const RouteMessage *m) {
        Truth t;

        switch (c->kind) {
        case NODE_LITERAL:
                return c->literal;
        case NODE_PROPERTY:
                return string_or_undefined(route_message_get_property(m, c->text));
        case NODE_SYSTEM:
                return string_or_undefined(route_message_get_system(m, c->system));
        case NODE_IS_DEFINED:
                return (Value){ .type = VALUE_BOOL, .boolean = eval(c->children[0], m).type != VALUE_UNDEFINED };
        case NODE_NOT:
                t = truth_of(eval(c->children[0], m));
                return value_of(t == TRUTH_UNDEFINED ? t : t == TRUTH_TRUE ? TRUTH_FALSE : TRUTH_TRUE);
        case NODE_AND:
                t = TRUTH_TRUE;
                for (size_t i = 0; i < c->n_children; i++) {
                        Truth x = truth_of(eval(c->children[i], m));
                        if (x == TRUTH_FALSE)
                                return value_of(TRUTH_FALSE);
                        if (x == TRUTH_UNDEFINED)
                                t = TRUTH_UNDEFINED;
                }
                return value_of(t);
        case NODE_OR:
                t = TRUTH_FALSE;
                for (size_t i = 0; i < c->n_children; i++) {
                        Truth x = truth_of(eval(c->children[i], m));
                        if (x == TRUTH_TRUE)
                                return value_of(TRUTH_TRUE);
                        if (x == TRUTH_UNDEFINED)
                                t = TRUTH_UNDEFINED;
                }
                return value_of(t);
        case NODE_COMPARE:
                return compare(c->op, eval(c->children[0], m), eval(c->children[1], m));
        }
        return UNDEFINED;
}

bool route_condition_match(const RouteCondition *c, const RouteMessage *m) {
        if (!c || !m)
                return false;
        return truth_of(eval(c, m)) == TRUTH_TRUE;
}
