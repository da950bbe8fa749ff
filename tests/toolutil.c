/* Helpers for the tests of the `nabla` command (see toolutil.h). */
#include "toolutil.h"

#include <criterion/criterion.h>
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
