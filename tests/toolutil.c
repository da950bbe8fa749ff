/* Helpers for the tests of the `nabla` command (see toolutil.h). */
#include "toolutil.h"

#include <criterion/criterion.h>
#include <expat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *slurp_fd(int fd)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    lseek(fd, 0, SEEK_SET);
    for (ssize_t got; (got = read(fd, buf + n, cap - n - 1)) > 0;) {
        n += (size_t)got;
        if (cap - n < 2) buf = realloc(buf, cap *= 2);
    }
    buf[n] = 0;
    close(fd);
    return buf;
}

static int capture_file(void)
{
    char name[] = "/tmp/nabla-cap-XXXXXX";
    int fd = mkstemp(name);
    cr_assert_geq(fd, 0);
    unlink(name);
    return fd;
}

tool_result tool_run(const char *const *args)
{
    const char *tool = test_env("NABLA_TOOL");
    const char *argv[64] = {tool};
    int n = 1;
    for (; args[n - 1] && n < 63; n++) argv[n] = args[n - 1];
    argv[n] = NULL;
    int out = capture_file(), err = capture_file();
    fflush(NULL);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        dup2(out, 1);
        dup2(err, 2);
        execv(tool, (char *const *)argv);
        _exit(127);
    }
    int ws;
    waitpid(pid, &ws, 0);
    tool_result r = {WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws), slurp_fd(out), slurp_fd(err)};
    return r;
}

void tool_result_free(tool_result *r)
{
    free(r->out);
    free(r->err);
    r->out = r->err = NULL;
}

static void XMLCALL on_start(void *u, const XML_Char *name, const XML_Char **attrs)
{
    svg_info *s = u;
    if (!strcmp(name, "text")) s->depth++;
    if (!strcmp(name, "rect") && !s->rects++)
        for (int i = 0; attrs[i]; i += 2)
            if (!strcmp(attrs[i], "fill")) snprintf(s->bg, sizeof s->bg, "%s", attrs[i + 1]);
}

static void XMLCALL on_end(void *u, const XML_Char *name)
{
    svg_info *s = u;
    if (!strcmp(name, "text") && s->depth-- > 0 && s->len < sizeof s->text - 1) s->text[s->len++] = '\n';
}

static void XMLCALL on_chars(void *u, const XML_Char *c, int n)
{
    svg_info *s = u;
    if (s->depth > 0 && n > 0 && s->len + (size_t)n < sizeof s->text - 1) {
        memcpy(s->text + s->len, c, (size_t)n);
        s->len += (size_t)n;
    }
}

void svg_parse(const char *svg, svg_info *s)
{
    XML_Parser p = XML_ParserCreate(NULL);
    cr_assert_not_null(p);
    memset(s, 0, sizeof *s);
    s->text[s->len++] = '\n';
    XML_SetUserData(p, s);
    XML_SetElementHandler(p, on_start, on_end);
    XML_SetCharacterDataHandler(p, on_chars);
    enum XML_Status st = XML_Parse(p, svg, (int)strlen(svg), 1);
    char err[256];
    snprintf(err, sizeof err, "%s at line %lu", XML_ErrorString(XML_GetErrorCode(p)),
             (unsigned long)XML_GetCurrentLineNumber(p));
    XML_ParserFree(p);
    cr_assert_eq(st, XML_STATUS_OK, "the SVG does not parse: %s", err);
    s->text[s->len] = 0;
}

bool svg_has_text(const svg_info *s, const char *word)
{
    char line[300];
    snprintf(line, sizeof line, "\n%s\n", word);
    return strstr(s->text, line) != NULL;
}
