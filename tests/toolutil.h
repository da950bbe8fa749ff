/* For the tests of the `nabla` command, linked with the harness (testutil.h)
 * into those tests only: running the command as a separate process (its path
 * comes from the NABLA_TOOL environment variable) and reading the SVG it draws
 * (with expat). Failures assert through Criterion. */
#ifndef NABLA_TOOLUTIL_H
#define NABLA_TOOLUTIL_H

#include "testutil.h"

typedef struct tool_result {
    int status;   /* exit status, or 128 + signal */
    char *out;    /* everything printed on stdout */
    char *err;    /* ... and on stderr */
} tool_result;

/* Runs `nabla ARGS...` (args ends with NULL); fails if NABLA_TOOL is unset or it cannot fork. */
tool_result tool_run(const char *const *args);
/* Frees what tool_run captured. */
void tool_result_free(tool_result *r);
/* tool_run of the arguments given. */
#define TOOL(...) tool_run((const char *const[]){__VA_ARGS__, NULL})

/* What svg_parse finds in an SVG. */
typedef struct svg_info {
    char text[65536];  /* every <text> element's text, each between '\n's */
    size_t len;
    int depth;         /* inside a <text> element, while parsing */
    char bg[32];       /* the fill of the first <rect> (the background) */
    int rects;
} svg_info;

/* Parses svg as XML (expat) into *s; fails unless it is well-formed. */
void svg_parse(const char *svg, svg_info *s);
/* Whether word is the whole text of one <text> element of s; never fails. */
bool svg_has_text(const svg_info *s, const char *word);

#endif
