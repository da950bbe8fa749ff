/* .npz weights: files written by numpy.savez and savez_compressed (stored in
 * tests/data/npz, see its README), round trips through nb_npz_write and
 * nb_weights_save, corrupt archives, members that are not .npy, and the
 * message for a missing param (for .npz and safetensors alike). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

/* memmem without _GNU_SOURCE */
static char *find(char *hay, size_t len, const char *needle)
{
    size_t k = strlen(needle);
    for (size_t i = 0; i + k <= len; i++)
        if (!memcmp(hay + i, needle, k)) return hay + i;
    return NULL;
}

TestSuite(npz, .init = tmp_make, .fini = tmp_remove, .timeout = 60);

static void expect_numpy_set(const nb_tensor_set *s)
{
    cr_assert_eq(s->n, 4);
    const nb_tensor *W = nb_tensor_set_find(s, "W"), *b = nb_tensor_set_find(s, "b");
    const nb_tensor *n = nb_tensor_set_find(s, "n"), *sc = nb_tensor_set_find(s, "s");
    cr_assert(W && b && n && sc, "names W, b, n, s");
    cr_expect_eq(W->dtype, NB_F32);
    cr_expect(W->rank == 2 && W->shape[0] == 2 && W->shape[1] == 3);
    for (int i = 0; i < 6; i++) cr_expect_eq(((float *)W->data)[i], i / 4.0f);
    cr_expect_eq(b->dtype, NB_F64);
    cr_expect_eq(((double *)b->data)[1], -1.25);
    cr_expect_eq(n->dtype, NB_I32, "int64 comes as i32");
    cr_expect(((int32_t *)n->data)[0] == 7 && ((int32_t *)n->data)[1] == -9);
    cr_expect_eq(sc->rank, 0);
    cr_expect_eq(((float *)sc->data)[0], 2.5f);
}

Test(npz, reads_numpy_savez)
{
    nb_tensor_set s;
    cr_assert_eq(nb_npz_read(test_file("data/npz/savez.npz"), &s), NB_OK, "%s", nb_last_error());
    expect_numpy_set(&s);
    cr_expect_eq(s.n_meta, 0);
    nb_tensor_set_free(&s);
}

Test(npz, reads_numpy_savez_compressed)
{
    nb_tensor_set s;
    cr_assert_eq(nb_tensors_read(test_file("data/npz/savez_compressed.npz"), &s), NB_OK, "%s", nb_last_error());
    expect_numpy_set(&s);
    nb_tensor_set_free(&s);
}

Test(npz, round_trip_with_metadata)
{
    nb_tensor_set s = {0}, r;
    nb_tensor a = tensor_of(NB_F32, 2, (int64_t[]){2, 2}, (double[]){1, -2, 3.5, 4});
    nb_tensor b = tensor_of(NB_F64, 0, NULL, (double[]){0.1});
    nb_tensor c = tensor_of(NB_I32, 1, (int64_t[]){3}, (double[]){5, -6, 7});
    nb_tensor e = tensor_of(NB_F32, 1, (int64_t[]){0}, NULL);
    cr_assert_eq(nb_tensor_set_add(&s, "h1.W", &a), NB_OK);
    cr_assert_eq(nb_tensor_set_add(&s, "bias", &b), NB_OK);
    cr_assert_eq(nb_tensor_set_add(&s, "ids", &c), NB_OK);
    cr_assert_eq(nb_tensor_set_add(&s, "empty", &e), NB_OK);
    cr_assert_eq(nb_tensor_set_meta(&s, "epoch", "3"), NB_OK);
    cr_assert_eq(nb_tensors_write(tmp_path("w.npz"), &s), NB_OK, "%s", nb_last_error());
    cr_expect_eq(tmp_count_files(), 1, "no temporary file left beside it");
    size_t len;
    char *bytes = read_text(tmp_path("w.npz"), &len);
    cr_expect(len > 4 && !memcmp(bytes, "PK\x03\x04", 4), "a zip archive");
    free(bytes);
    cr_assert_eq(nb_npz_read(tmp_path("w.npz"), &r), NB_OK, "%s", nb_last_error());
    cr_assert_eq(r.n, 4);
    for (size_t i = 0; i < s.n; i++) {
        const nb_tensor *t = nb_tensor_set_find(&r, s.items[i].name), *u = &s.items[i].t;
        cr_assert(t, "%s", s.items[i].name);
        cr_expect(t->dtype == u->dtype && t->rank == u->rank, "%s", s.items[i].name);
        cr_expect(!memcmp(t->shape, u->shape, sizeof(int64_t) * (size_t)u->rank));
        cr_expect(!memcmp(t->data, u->data, nb_tensor_bytes(u)), "%s", s.items[i].name);
    }
    cr_assert_eq(r.n_meta, 1);
    cr_expect_str_eq(r.meta_keys[0], "epoch");
    cr_expect_str_eq(r.meta_vals[0], "3");
    nb_tensor_set_free(&r);
    nb_tensor_set_free(&s);
    nb_tensor_free(&a);
    nb_tensor_free(&b);
    nb_tensor_free(&c);
    nb_tensor_free(&e);
}

Test(npz, empty_set_round_trip)
{
    nb_tensor_set s = {0}, r;
    cr_assert_eq(nb_npz_write(tmp_path("e.npz"), &s), NB_OK, "%s", nb_last_error());
    cr_assert_eq(nb_npz_read(tmp_path("e.npz"), &r), NB_OK, "%s", nb_last_error());
    cr_expect_eq(r.n, 0);
    nb_tensor_set_free(&r);
}

Test(npz, corrupt_archives)
{
    size_t len;
    char *good = read_text(test_file("data/npz/savez.npz"), &len);
    nb_tensor_set s;
    write_file(tmp_path("cut.npz"), good, len / 2);  /* no central directory */
    cr_expect_eq(nb_npz_read(tmp_path("cut.npz"), &s), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "cut.npz: not a valid .npz (zip) file");
    write_text(tmp_path("text.npz"), "not a zip at all");
    cr_expect_eq(nb_npz_read(tmp_path("text.npz"), &s), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "not a valid .npz (zip) file");
    /* a flipped byte in W's data: the member's CRC no longer matches */
    char *flip = malloc(len);
    memcpy(flip, good, len);
    const char *at = find(flip, len, "W.npy");
    cr_assert(at);
    flip[(at - flip) + 5 + 20 + 128 + 4] ^= 0x55;  /* past the name, zip64 extra and the npy header */
    write_file(tmp_path("flip.npz"), flip, len);
    cr_expect_eq(nb_npz_read(tmp_path("flip.npz"), &s), NB_ERR_FORMAT, "a flipped byte is seen");
    assert_has(nb_last_error(), "flip.npz: member 'W.npy' cannot be read: CRC error");
    free(flip);
    free(good);
    cr_expect_eq(nb_npz_read(tmp_path("missing.npz"), &s), NB_ERR_IO);
}

Test(npz, a_member_not_npy_is_an_error)
{
    nb_tensor_set s;
    cr_expect_eq(nb_npz_read(test_file("data/npz/not_npy.npz"), &s), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "member 'notes.txt' is not a .npy array");
}

/* A member that is not a valid .npy names the file and the member. */
Test(npz, a_bad_npy_member_names_it)
{
    nb_tensor_set s;
    cr_expect_eq(nb_npz_read(test_file("data/npz/bad_member.npz"), &s), NB_ERR_FORMAT);
    assert_has(nb_last_error(), "bad_member.npz: member x.npy: ");
    assert_has(nb_last_error(), ".npy version");
}

/* ---- weights ------------------------------------------------------------- */

static nb_graph *two_params(const char *w, const char *b)
{
    nb_graph *g = nb_graph_new();
    nb_param(g, w, NB_F32, 2, (int64_t[]){2, 3}, (nb_init){.kind = NB_INIT_NORMAL, .a = 1, .seed = 3});
    nb_param(g, b, NB_F32, 1, (int64_t[]){3}, NB_INIT(NB_INIT_ONES));
    cr_assert_eq(nb_graph_status(g), NB_OK, "%s", nb_graph_error(g));
    return g;
}

Test(npz, weights_round_trip)
{
    nb_graph *g = two_params("h1.W", "h1.b"), *h = nb_graph_new();
    nb_node *w2 = nb_param(h, "h1.W", NB_F32, 2, (int64_t[]){2, 3}, NB_INIT(NB_INIT_ZEROS));
    nb_param(h, "h1.b", NB_F32, 1, (int64_t[]){3}, NB_INIT(NB_INIT_ZEROS));
    const char *meta[] = {"model", "m"};
    cr_assert_eq(nb_weights_save(g, tmp_path("w.NPZ"), meta, 1), NB_OK, "%s", nb_graph_error(g));
    nb_diags ignored;
    cr_assert_eq(nb_weights_load(h, tmp_path("w.NPZ"), &ignored), NB_OK, "%s", nb_graph_error(h));
    cr_expect_eq(ignored.n, 0);
    cr_expect(!memcmp(nb_param_value(w2)->data, nb_param_value(nb_graph_find(g, "h1.W"))->data, 24));
    nb_graph_free(g);
    nb_graph_free(h);
}

/* numpy's own file as weights: the f8 'b' is converted to the param's f32. */
Test(npz, weights_from_numpy)
{
    nb_graph *g = nb_graph_new();
    nb_node *W = nb_param(g, "W", NB_F32, 2, (int64_t[]){2, 3}, NB_INIT(NB_INIT_ZEROS));
    nb_node *b = nb_param(g, "b", NB_F32, 1, (int64_t[]){3}, NB_INIT(NB_INIT_ZEROS));
    nb_diags ignored;
    cr_assert_eq(nb_weights_load(g, test_file("data/npz/savez_compressed.npz"), &ignored), NB_OK, "%s",
                 nb_graph_error(g));
    cr_expect_eq(ignored.n, 2, "n and s name no param");
    cr_expect_eq(((float *)nb_param_value(W)->data)[5], 1.25f);
    cr_expect_eq(((float *)nb_param_value(b)->data)[2], 3.0f);
    nb_diags_free(&ignored);
    nb_graph_free(g);
}

static void expect_missing_message(const char *file)
{
    nb_graph *g = two_params("h1.W", "h1.b"), *h = two_params("h1.w", "h1.b");
    cr_assert_eq(nb_weights_save(g, tmp_path(file), NULL, 0), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(nb_weights_load(h, tmp_path(file), NULL), NB_ERR_FORMAT);
    assert_has(nb_graph_error(h), "no tensor for param 'h1.w' (did you mean 'h1.W'?); the file holds 2 tensors: h1.W, h1.b");
    nb_graph_free(g);
    nb_graph_free(h);
}

Test(npz, missing_param_lists_the_file_npz) { expect_missing_message("w.npz"); }
Test(npz, missing_param_lists_the_file_safetensors) { expect_missing_message("w.safetensors"); }

/* Many tensors: the list stops short of the message's end with "...". */
Test(npz, missing_param_long_list)
{
    nb_graph *g = nb_graph_new(), *h = nb_graph_new();
    char name[64];
    for (int i = 0; i < 200; i++) {
        snprintf(name, sizeof name, "layer%03d.weights_of_a_long_name", i);
        nb_param(g, name, NB_F32, 1, (int64_t[]){1}, NB_INIT(NB_INIT_ZEROS));
    }
    nb_param(h, "other", NB_F32, 1, (int64_t[]){1}, NB_INIT(NB_INIT_ZEROS));
    cr_assert_eq(nb_weights_save(g, tmp_path("w.npz"), NULL, 0), NB_OK, "%s", nb_graph_error(g));
    cr_expect_eq(nb_weights_load(h, tmp_path("w.npz"), NULL), NB_ERR_FORMAT);
    assert_has(nb_graph_error(h), "the file holds 200 tensors: layer000.weights_of_a_long_name, ");
    const char *e = nb_graph_error(h);
    cr_expect(!strcmp(e + strlen(e) - 3, "..."), "%s", e);
    nb_graph_free(g);
    nb_graph_free(h);
}

/* ---- checkpoints go through the same code -------------------------------- */

static const char *const SMALL =
    "nabla: 1\nseed: 7\ninputs:\n  x: [N, 4]\n  t: {shape: [N], dtype: i32}\n"
    "nodes:\n  - {name: y, layer: dense, in: [x], units: 3}\n"
    "  - {name: loss, op: softmax_cross_entropy, in: [y, t]}\nloss: loss\n";

static nb_trainer *trainer_of(nb_model **m)
{
    nb_diags d = {0};
    cr_assert_eq(nb_model_load_string(SMALL, strlen(SMALL), NULL, NULL, m, &d), NB_OK);
    nb_graph *g = nb_model_graph(*m);
    nb_trainer_cfg c = {.loss = nb_model_loss(*m), .optim = nb_optim_defaults(NB_ADAM), .batch = 2, .seed = 3};
    nb_trainer *t;
    cr_assert_eq(nb_trainer_new(g, &c, &t), NB_OK, "%s", nb_graph_error(g));
    return t;
}

Test(npz, checkpoint_round_trip)
{
    nb_model *ma, *mb;
    nb_trainer *a = trainer_of(&ma), *b = trainer_of(&mb);
    float *w = nb_param_value(nb_graph_find(nb_model_graph(ma), "y.W"))->data;
    w[5] = 42.5f;
    cr_assert_eq(nb_trainer_save(a, tmp_path("ck.npz"), NULL, 0), NB_OK, "%s", nb_trainer_error(a));
    nb_tensor_set s;
    cr_assert_eq(nb_npz_read(tmp_path("ck.npz"), &s), NB_OK, "%s", nb_last_error());
    cr_expect(nb_tensor_set_find(&s, "y.W") && s.n_meta > 0, "params and metadata in the .npz");
    nb_tensor_set_free(&s);
    cr_assert_eq(nb_trainer_resume(b, tmp_path("ck.npz")), NB_OK, "%s", nb_trainer_error(b));
    cr_expect_eq(((float *)nb_param_value(nb_graph_find(nb_model_graph(mb), "y.W"))->data)[5], 42.5f);
    nb_trainer_free(a);
    nb_trainer_free(b);
    nb_model_free(ma);
    nb_model_free(mb);
}
