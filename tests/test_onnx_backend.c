/* The ONNX project's own backend tests (Debian libonnx-testdata), run
 * through nabla's importer: every case of data/{node, pytorch-converted,
 * pytorch-operator, simple} is classified pass, wrong, unsupported or error
 * (a load or run failure other than "unsupported"). One test per folder
 * asserts no wrong and no crashed case and that the passing count reaches
 * its target. Each case runs in a child process of its own, so a crash is
 * counted, not fatal. NABLA_ONNX_VERBOSE=1 prints every case's verdict.
 * NABLA_ONNX_EVERY=K runs every K-th case only (targets scale down
 * accordingly). Under AddressSanitizer each child checks for leaks. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "onnx_case.h"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/lsan_interface.h>
/* The child leaves with _exit (Criterion's exit handlers belong to the
 * worker), which skips LeakSanitizer's check at exit: it is run here. */
static bool leaked(void) { return __lsan_do_recoverable_leak_check() != 0; }
#else
static bool leaked(void) { return false; }
#endif

#define DATA "/usr/share/libonnx-testdata/data"

static const char *const verdict[] = {"pass", "wrong", "unsupported", "error", "crash"};

/* Runs one case in a child; its verdict and message come back through a pipe. */
static oc_result run_isolated(const char *dir, char *msg, size_t cap)
{
    int fd[2];
    if (pipe(fd)) return snprintf(msg, cap, "pipe failed"), OC_ERROR;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        char m[600] = "";
        unsigned char r = (unsigned char)oc_run_case(dir, m, sizeof m);
        if (leaked()) r = OC_CRASH, snprintf(m, sizeof m, "memory leaked (LeakSanitizer's report above)");
        if (write(fd[1], &r, 1) != 1 || write(fd[1], m, strlen(m)) < 0) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    unsigned char r = OC_CRASH;
    ssize_t got = pid > 0 ? read(fd[0], &r, 1) : 0;
    size_t k = 0;
    ssize_t n;
    while (k + 1 < cap && (n = read(fd[0], msg + k, cap - 1 - k)) > 0) k += (size_t)n;
    msg[k] = 0;
    close(fd[0]);
    int status = 0;
    if (pid > 0) waitpid(pid, &status, 0);
    if (got != 1 || !WIFEXITED(status) || WEXITSTATUS(status)) {
        snprintf(msg, cap, "the case crashed (status %d)", status);
        return OC_CRASH;
    }
    return (oc_result)r;
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }

/* Runs a folder's cases; asserts the target. */
static void run_folder(const char *sub, int target)
{
    char root[256];
    snprintf(root, sizeof root, "%s/%s", DATA, sub);
    struct stat st;
    if (stat(root, &st)) cr_skip_test("%s not found (Debian libonnx-testdata)", root);
    const char *e = getenv("NABLA_ONNX_EVERY");
    int every = e && atoi(e) > 1 ? atoi(e) : 1;
    bool verbose = getenv("NABLA_ONNX_VERBOSE") != NULL;
    struct dirent **list;
    int n = scandir(root, &list, NULL, by_name);
    cr_assert(n >= 0, "cannot list %s", root);
    int count[5] = {0}, ran = 0;
    char wrong[4096] = "";
    for (int i = 0; i < n; i++) {
        const char *name = list[i]->d_name;
        if (name[0] != '.' && i % every == 0) {
            char dir[600], msg[600];
            snprintf(dir, sizeof dir, "%s/%s", root, name);
            oc_result r = run_isolated(dir, msg, sizeof msg);
            count[r]++, ran++;
            if (verbose) printf("%s/%s: %s %s\n", sub, name, verdict[r], r ? msg : "");
            if ((r == OC_WRONG || r == OC_CRASH) && strlen(wrong) < sizeof wrong - 700)
                snprintf(wrong + strlen(wrong), sizeof wrong - strlen(wrong), "\n  %s: %s", name, msg);
        }
        free(list[i]);
    }
    free(list);
    printf("onnx backend %s: %d cases: %d pass, %d wrong, %d unsupported, %d error, %d crash%s\n",
           sub, ran, count[OC_PASS], count[OC_WRONG], count[OC_UNSUPPORTED], count[OC_ERROR],
           count[OC_CRASH], wrong);
    fflush(stdout);
    cr_expect_eq(count[OC_WRONG] + count[OC_CRASH], 0, "%s: wrong or crashed cases:%s", sub, wrong);
    cr_expect_geq(count[OC_PASS], target / every, "%s: %d pass, target %d", sub, count[OC_PASS], target / every);
}

Test(onnx_backend, node, .timeout = 600) { run_folder("node", 200); }
Test(onnx_backend, pytorch_converted, .timeout = 600) { run_folder("pytorch-converted", 50); }
Test(onnx_backend, pytorch_operator, .timeout = 600) { run_folder("pytorch-operator", 20); }
Test(onnx_backend, simple, .timeout = 600) { run_folder("simple", 0); }
