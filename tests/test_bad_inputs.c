/* The bad-input corpus (tests/bad/, issue 11): every malformed model, .npy,
 * safetensors, .npz and IDX file of tests/bad/MANIFEST, given to the `nabla`
 * command that reads it, must make nabla exit with status 2 and print the
 * message the manifest gives: no crash, no hang and, in the sanitizer pass
 * (where NABLA_TOOL is the ASan build, which exits 23 on a leak), no leak.
 *
 * Also training checkpoints (nabla train --resume) and logs (nabla plot).
 *
 * A manifest line is FILE <TAB> COMMAND <TAB> EXPECTED (tests/bad/make.py
 * writes them and says what $FILE, $DIR, $BAD and $OUT stand for). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "toolutil.h"

#define MAX_ARGS 32

/* One line of the manifest, its words expanded. */
typedef struct bad_case {
    char file[256];
    char command[1024];
    char expected[1024];
} bad_case;

/* Copies text to out[0..cap) with $FILE, $DIR, $BAD and $OUT replaced. */
static void expand(const char *text, const char *file, const char *out_dir, char *out, size_t cap)
{
    char bad[1024], path[1400], dir[1400];
    snprintf(bad, sizeof bad, "%s/bad", test_dir());
    snprintf(path, sizeof path, "%s/%s", bad, file);
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    const char *names[] = {"$FILE", "$DIR", "$BAD", "$OUT"}, *values[] = {path, dir, bad, out_dir};
    size_t n = 0;
    while (*text && n + 1 < cap) {
        int k = 0;
        while (k < 4 && strncmp(text, names[k], strlen(names[k])) != 0) k++;
        if (k == 4) {
            out[n++] = *text++;
            continue;
        }
        n += (size_t)snprintf(out + n, cap - n, "%s", values[k]);
        cr_assert_lt(n, cap, "a manifest line is too long after expansion");
        text += strlen(names[k]);
    }
    out[n] = 0;
}

/* Reads the manifest into a malloc'd array; *n cases. */
static bad_case *read_manifest(size_t *n)
{
    char *text = read_text(test_file("bad/MANIFEST"), NULL);
    bad_case *cases = NULL;
    *n = 0;
    for (char *save = NULL, *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (line[0] == '#' || !line[0]) continue;
        char *tab1 = strchr(line, '\t'), *tab2 = tab1 ? strchr(tab1 + 1, '\t') : NULL;
        cr_assert(tab2, "manifest line without two tabs: %s", line);
        *tab1 = *tab2 = 0;
        cases = realloc(cases, (*n + 1) * sizeof *cases);
        cr_assert_not_null(cases);
        bad_case *c = &cases[(*n)++];
        cr_assert_lt(strlen(line), sizeof c->file);
        strcpy(c->file, line);
        snprintf(c->command, sizeof c->command, "%s", tab1 + 1);
        snprintf(c->expected, sizeof c->expected, "%s", tab2 + 1);
        cr_assert(c->expected[0], "%s: no expected message", c->file);
    }
    free(text);
    return cases;
}

/* Runs one case; returns whether it behaved (each failure is reported). */
static bool run_case(const bad_case *c, int index)
{
    char out_dir[64], command[2048], expected[2048], *args[MAX_ARGS + 1];
    snprintf(out_dir, sizeof out_dir, "out%d", index);
    snprintf(out_dir, sizeof out_dir, "%s", tmp_path(out_dir));
    expand(c->command, c->file, out_dir, command, sizeof command);
    expand(c->expected, c->file, out_dir, expected, sizeof expected);
    int n = 0;
    for (char *save = NULL, *w = strtok_r(command, " ", &save); w; w = strtok_r(NULL, " ", &save)) {
        cr_assert_lt(n, MAX_ARGS, "%s: too many words in the command", c->file);
        args[n++] = w;
    }
    args[n] = NULL;
    tool_result r = tool_run((const char *const *)args);
    bool ok = r.status == 2 && strstr(r.err, expected) != NULL;
    cr_expect_eq(r.status, 2, "%s: exit status %d, not 2; stderr:\n%s", c->file, r.status, r.err);
    cr_expect(strstr(r.err, expected) != NULL, "%s: expected\n  %s\nin stderr:\n%s", c->file, expected, r.err);
    tool_result_free(&r);
    return ok;
}

/* Runs every case whose file starts with prefix; returns how many there are. */
static size_t run_cases(const char *prefix)
{
    size_t n, ran = 0, bad = 0;
    bad_case *cases = read_manifest(&n);
    for (size_t i = 0; i < n; i++) {
        if (strncmp(cases[i].file, prefix, strlen(prefix)) != 0) continue;
        ran++;
        bad += !run_case(&cases[i], (int)i);
    }
    free(cases);
    cr_expect_eq(bad, 0, "%zu of the %zu cases of %s failed", bad, ran, prefix);
    return ran;
}

TestSuite(bad_inputs, .init = tmp_make, .fini = tmp_remove, .timeout = 280);

Test(bad_inputs, yaml_models) { cr_expect_geq(run_cases("yaml/"), 20); }
Test(bad_inputs, npy) { cr_expect_geq(run_cases("npy/"), 20); }
Test(bad_inputs, safetensors) { cr_expect_geq(run_cases("safetensors/"), 20); }
Test(bad_inputs, npz) { cr_expect_geq(run_cases("npz/"), 10); }
Test(bad_inputs, idx) { cr_expect_geq(run_cases("idx/"), 20); }
Test(bad_inputs, checkpoints) { cr_expect_geq(run_cases("checkpoint/"), 10); }
Test(bad_inputs, training_logs) { cr_expect_geq(run_cases("log/"), 10); }

/* The corpus is as large as issue 11 asks, and every file it names exists. */
Test(bad_inputs, manifest_has_60_cases_of_existing_files)
{
    size_t n;
    bad_case *cases = read_manifest(&n);
    cr_expect_geq(n, 60);
    for (size_t i = 0; i < n; i++) test_file("bad/%s", cases[i].file);
    free(cases);
}
