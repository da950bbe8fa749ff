/* The layering of the sources (design.md, "folders"), checked on their text so
 * that it cannot rot: src/ is the ground floor and knows no graph; nothing in
 * the library knows the command; the graph core does not know the YAML
 * loader, which sits in graph/model/. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* One rule: a file breaks it when a line includes one of `includes` (a
 * quoted path containing it) or, unless NULL, mentions one of `words`. */
typedef struct rule {
    const char *why;
    const char *const *includes;
    const char *const *words;
} rule;

static const char *const src_includes[] = {"\"internal.h\"", "graph/", "ops/", "model/", NULL};
static const char *const src_words[] = {"nb_graph", "nb_node", NULL};
static const rule ground_floor = {"src/ knows no graph", src_includes, src_words};

static const char *const cli_includes[] = {"cli.h", "tools/", NULL};
static const rule no_command = {"the library knows no command", cli_includes, NULL};

static const char *const loader_includes[] = {"model_internal.h", "<yaml.h>", "model/", NULL};
static const rule no_loader = {"the graph core and ops know no loader", loader_includes, NULL};

static bool has_any(const char *line, const char *const *list)
{
    for (; list && *list; list++)
        if (strstr(line, *list)) return true;
    return false;
}

/* Why a line breaks the rule, or NULL. */
static const char *breaks(const rule *r, const char *line)
{
    const char *p = line + strspn(line, " \t");
    if (*p == '#') {
        p += 1 + strspn(p + 1, " \t");
        if (!strncmp(p, "include", 7) && has_any(p + 7, r->includes)) return "includes";
    }
    return has_any(line, r->words) ? "mentions" : NULL;
}

static bool is_source(const char *name)
{
    size_t n = strlen(name);
    return n > 2 && name[n - 2] == '.' && (name[n - 1] == 'c' || name[n - 1] == 'h');
}

/* Checks every .c and .h of one folder (not its subfolders); returns how
 * many files it read, so that a wrong path cannot pass by reading none. */
static int check_dir(const rule *r, const char *folder)
{
    char dir[4096], path[8192], line[4096];
    snprintf(dir, sizeof dir, "%s/../%s", test_dir(), folder);
    DIR *d = opendir(dir);
    cr_assert_not_null(d, "cannot open %s", dir);
    int files = 0;
    for (struct dirent *e; (e = readdir(d));) {
        if (!is_source(e->d_name)) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        FILE *f = fopen(path, "r");
        cr_assert_not_null(f, "cannot read %s", path);
        for (int no = 1; fgets(line, sizeof line, f); no++) {
            line[strcspn(line, "\n")] = 0;
            const char *how = breaks(r, line);
            cr_expect_null(how, "%s/%s:%d %s what it must not (%s): %s", folder, e->d_name, no,
                           how, r->why, line);
        }
        fclose(f);
        files++;
    }
    closedir(d);
    return files;
}

Test(layers, src_knows_no_graph)
{
    cr_expect_gt(check_dir(&ground_floor, "src"), 5);
}

Test(layers, the_library_knows_no_command)
{
    const char *const lib[] = {"src", "ops", "graph", "graph/model"};
    for (size_t i = 0; i < sizeof lib / sizeof *lib; i++)
        cr_expect_gt(check_dir(&no_command, lib[i]), 0, "no sources in %s", lib[i]);
}

Test(layers, the_graph_core_knows_no_loader)
{
    cr_expect_gt(check_dir(&no_loader, "graph"), 5);
    cr_expect_gt(check_dir(&no_loader, "ops"), 5);
}

/* The checks bite: lines that break the rules are caught, lines that do not pass. */
Test(layers, rules_catch_what_they_forbid)
{
    cr_expect_not_null(breaks(&ground_floor, "#include \"internal.h\"\n"));
    cr_expect_not_null(breaks(&ground_floor, "  #  include \"../graph/internal.h\"\n"));
    cr_expect_not_null(breaks(&ground_floor, "static void f(const nb_graph *g);\n"));
    cr_expect_not_null(breaks(&ground_floor, "    nb_node *n = x;\n"));
    cr_expect_not_null(breaks(&no_command, "#include \"../tools/cli.h\"\n"));
    cr_expect_not_null(breaks(&no_loader, "#include \"model/model_internal.h\"\n"));
    cr_expect_null(breaks(&ground_floor, "#include \"base.h\"\n"));
    cr_expect_null(breaks(&ground_floor, "#include \"data_internal.h\"\n"));
    cr_expect_null(breaks(&ground_floor, "/* the graph's own header, internal.h, is not for us */\n"));
    cr_expect_null(breaks(&no_loader, "#include \"internal.h\"\n"));
}
