/* Output files and input opening (util/fileio.h): what may be replaced, what is written through,
 * what is refused, what an interrupted or failing run leaves behind (nothing), and that inputs
 * which are not regular files fail at once instead of blocking. CLI commands are run under
 * `timeout`, so a regression that blocks fails the test instead of hanging the suite. */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test.h"
#include "util/fileio.h"

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    if (!f) return;
    fwrite(data, 1, n, f);
    fclose(f);
}

static void copy(const char *from, const char *to) {
    void *buf;
    long n = read_all(from, &buf);
    if (n < 0) return;
    write_bytes(to, buf, (size_t)n);
    free(buf);
}

/* 1 if the two files have the same bytes. */
static int same_bytes(const char *a, const char *b) {
    void *x, *y;
    long nx = read_all(a, &x), ny = read_all(b, &y);
    int same = nx >= 0 && nx == ny && memcmp(x, y, (size_t)nx) == 0;
    if (nx >= 0) free(x);
    if (ny >= 0) free(y);
    return same;
}

/* Names in a directory other than . and .., or -1 if it cannot be read. */
static int count_entries(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return -1;
    int n = 0;
    for (struct dirent *de; (de = readdir(d));) n += strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* A fresh empty directory for one test (its own copy: tmp_path's ring is reused by run_cmd). */
static const char *fresh_dir(const char *name) {
    static char ring[4][512];
    static int k;
    char *d = ring[k++ % 4];
    snprintf(d, sizeof ring[0], "%s", tmp_path(name));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s'", d, d);
    CHECK(system(cmd) == 0);
    return d;
}

static const char *join(const char *dir, const char *name) {
    static char ring[8][1024];
    static int k;
    char *b = ring[k++ % 8], t[sizeof ring[0]];
    snprintf(t, sizeof t, "%s/%s", dir, name); /* dir may be an earlier result in the ring */
    memcpy(b, t, sizeof t);
    return b;
}

/* stories3m copied into dir/NAME (config, tokenizer, weights). */
static const char *copy_model(const char *dir, const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    mkdir(path, 0755);
    copy(asset("models/stories3m/config.json"), join(path, "config.json"));
    copy(asset("models/stories3m/tokenizer.model"), join(path, "tokenizer.model"));
    copy(asset("models/stories3m/model.safetensors"), join(path, "model.safetensors"));
    return path;
}

/* Runs `bitrom ARGS` (under timeout 60, in sh, so ARGS may hold shell syntax); the exit status. */
static int bitrom(const char *args, char *err, size_t err_cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "timeout 60 %s %s", bitrom_bin(), args);
    return run_cmd(cmd, NULL, 0, err, err_cap);
}

/* Expects a clean failure: exit 1 or 2 (not 124, a timeout), one "bitrom: error:" line with `expect`. */
static void expect_error(const char *args, const char *expect) {
    char err[8192];
    int rc = bitrom(args, err, sizeof err);
    int lines = 0;
    for (char *p = err; *p; p++) lines += *p == '\n';
    g_hostile_cases++;
    CHECKF(rc == 1 || rc == 2, "exit %d for: %s\n%s", rc, args, err);
    CHECKF(lines == 1 && strncmp(err, "bitrom: error:", 14) == 0, "stderr for %s: %s", args, err);
    CHECKF(!expect || strstr(err, expect), "stderr for %s lacks '%s': %s", args, expect, err);
}

static int is_kind(const char *path, mode_t kind) {
    struct stat st;
    return lstat(path, &st) == 0 && (st.st_mode & S_IFMT) == kind;
}

#define LOGITS "logits -m %s --tokens \"1 403 407\" -o "

void test_output_to_dev_null_writes_through(void) {
    /* before: a temporary file was renamed onto /dev/null, replacing the device with a regular
     * file (as root). The library call shows first whether a temporary file would be used, so a
     * regression fails here without ever renaming anything onto the real /dev/null. */
    br_atomic_file f;
    br_error e;
    CHECK(br_atomic_open(&f, "/dev/null", &e) == 0);
    CHECKF(f.tmp_path == NULL, "a temporary file %s for a character device", f.tmp_path ? f.tmp_path : "");
    if (f.tmp_path) {
        br_atomic_abort(&f);
        return;
    }
    fputs("discarded", f.fp);
    CHECK(br_atomic_commit(&f, &e) == 0);
    char args[2048], err[4096];
    snprintf(args, sizeof args, LOGITS "/dev/null", asset("models/stories3m"));
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    CHECK(is_kind("/dev/null", S_IFCHR));
}

/* Runs `bitrom ARGS > TO` (run_cmd's own redirection is outside the parentheses). */
static int bitrom_to(const char *args, const char *to, char *err, size_t err_cap) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "(timeout 60 %s %s > '%s')", bitrom_bin(), args, to);
    return run_cmd(cmd, NULL, 0, err, err_cap);
}

void test_output_to_stdout(void) {
    const char *d = fresh_dir("out-stdout");
    char args[2048], err[16384]; /* rom's table on stderr is 60 lines */
    snprintf(args, sizeof args, LOGITS "%s", asset("models/stories3m"), join(d, "file.f32"));
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, LOGITS "-", asset("models/stories3m"));
    CHECKF(bitrom_to(args, join(d, "stdout.f32"), err, sizeof err) == 0, "%s", err);
    CHECK(same_bytes(join(d, "file.f32"), join(d, "stdout.f32")));
    CHECK(count_entries(d) == 2);
    /* GGUF to a pipe: the writer asks for its position to align the tensor data */
    snprintf(args, sizeof args, "convert -m %s -o - | cat", asset("models/stories3m"));
    CHECKF(bitrom_to(args, join(d, "pipe.gguf"), err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "convert -m %s -o %s", asset("models/stories3m"), join(d, "file.gguf"));
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    CHECK(same_bytes(join(d, "pipe.gguf"), join(d, "file.gguf")));
    /* rom's per-layer table moves to stderr when the image takes stdout */
    snprintf(args, sizeof args, "rom -m %s -o %s", asset("models/stories3m"), join(d, "file.rom"));
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    snprintf(args, sizeof args, "rom -m %s -o -", asset("models/stories3m"));
    CHECKF(bitrom_to(args, join(d, "stdout.rom"), err, sizeof err) == 0, "%s", err);
    CHECK(same_bytes(join(d, "file.rom"), join(d, "stdout.rom")) && strstr(err, "utilization"));
    /* a missing directory is named as such */
    snprintf(args, sizeof args, LOGITS "%s/no/such/dir/x.f32", asset("models/stories3m"), d);
    expect_error(args, "directory does not exist");
}

void test_output_refuses_symlink(void) {
    const char *d = fresh_dir("out-symlink");
    const char *victim = join(d, "victim"), *link = join(d, "link.f32");
    write_bytes(victim, "keep", 4);
    CHECK(symlink("victim", link) == 0);
    char args[2048];
    snprintf(args, sizeof args, LOGITS "%s", asset("models/stories3m"), link);
    expect_error(args, "symbolic link");
    CHECK(is_kind(link, S_IFLNK));
    void *buf;
    long n = read_all(victim, &buf);
    CHECK(n == 4 && memcmp(buf, "keep", 4) == 0);
    if (n >= 0) free(buf);
    CHECK(count_entries(d) == 2);
}

void test_output_refuses_fifo_and_directory(void) {
    const char *d = fresh_dir("out-special");
    const char *fifo = join(d, "fifo.f32"), *sub = join(d, "sub");
    CHECK(mkfifo(fifo, 0600) == 0);
    CHECK(mkdir(sub, 0700) == 0);
    char args[2048];
    snprintf(args, sizeof args, LOGITS "%s", asset("models/stories3m"), fifo);
    expect_error(args, "FIFO");
    CHECK(is_kind(fifo, S_IFIFO));
    snprintf(args, sizeof args, LOGITS "%s", asset("models/stories3m"), sub);
    expect_error(args, "directory");
    CHECK(is_kind(sub, S_IFDIR) && count_entries(sub) == 0);
    snprintf(args, sizeof args, "convert -m %s -o %s", asset("models/stories3m"), sub);
    expect_error(args, "directory");
    CHECK(count_entries(d) == 2);
}

void test_output_tmp_name_unpredictable(void) {
    /* before: "<path>.tmp.<pid>", opened without O_EXCL: a symlink planted there made the
     * output overwrite the file it pointed to */
    const char *d = fresh_dir("out-tmpname");
    const char *out = join(d, "out.f32"), *victim = join(d, "victim");
    write_bytes(victim, "keep", 4);
    char planted[1024];
    snprintf(planted, sizeof planted, "%s.tmp.%ld", out, (long)getpid());
    CHECK(symlink("victim", planted) == 0);
    br_atomic_file a, b;
    br_error e;
    CHECK(br_atomic_open(&a, out, &e) == 0);
    CHECK(br_atomic_open(&b, out, &e) == 0);
    CHECK(a.tmp_path && b.tmp_path && strcmp(a.tmp_path, b.tmp_path) != 0);
    CHECK(a.tmp_path && strncmp(a.tmp_path, d, strlen(d)) == 0 && strchr(a.tmp_path + strlen(d) + 1, '/') == NULL);
    CHECK(a.tmp_path && is_kind(a.tmp_path, S_IFREG));
    fputs("first", a.fp);
    fputs("second", b.fp);
    CHECK(br_atomic_commit(&a, &e) == 0);
    CHECK(br_atomic_commit(&b, &e) == 0);
    void *buf;
    long n = read_all(out, &buf);
    CHECK(n == 6 && memcmp(buf, "second", 6) == 0);
    if (n >= 0) free(buf);
    n = read_all(victim, &buf);
    CHECK(n == 4 && memcmp(buf, "keep", 4) == 0);
    if (n >= 0) free(buf);
    CHECK(is_kind(planted, S_IFLNK));
    CHECK(count_entries(d) == 3); /* out, victim, the planted link: no temporary file left */
}

/* A child that opens a file output and a directory output with one file, writes, reports
 * readiness on a pipe and waits to be killed with sig; the parent checks that it died of sig and
 * that nothing of either output is left. */
static void killed_while_writing(int sig) {
    char name[64];
    snprintf(name, sizeof name, "out-kill-%d", sig);
    const char *d = fresh_dir(name);
    const char *file = join(d, "out.f32"), *dir = join(d, "model");
    int ready[2];
    CHECK(pipe(ready) == 0);
    pid_t pid = fork();
    if (pid == 0) {
        /* a foreground process: the test runner may have been started with SIGINT ignored */
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
        close(ready[0]);
        br_atomic_file f, g;
        br_output_dir od;
        br_error e;
        if (br_atomic_open(&f, file, &e) || br_outdir_open(&od, dir, BR_OUT_NEW, &e) || br_outdir_create(&od, "config.json", &g, &e)) _exit(3);
        fputs("partial", f.fp);
        fflush(f.fp);
        fputs("{}", g.fp);
        if (br_atomic_commit(&g, &e)) _exit(4); /* a finished file inside an unfinished directory */
        if (write(ready[1], "r", 1) != 1) _exit(5);
        for (;;) pause();
    }
    close(ready[1]);
    char c = 0;
    CHECK(pid > 0 && read(ready[0], &c, 1) == 1 && c == 'r');
    close(ready[0]);
    CHECKF(count_entries(d) == 2, "%d entries while writing", count_entries(d)); /* the two temporaries */
    kill(pid, sig);
    int st = 0;
    CHECK(waitpid(pid, &st, 0) == pid);
    CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == sig, "status %#x", st);
    CHECKF(count_entries(d) == 0, "%d entries left after signal %d", count_entries(d), sig);
}

void test_output_tmp_removed_on_sigterm(void) { killed_while_writing(SIGTERM); }
void test_output_tmp_removed_on_sigint(void) { killed_while_writing(SIGINT); }

void test_output_refuses_input(void) {
    const char *d = fresh_dir("out-input");
    const char *m = copy_model(d, "m");
    char weights[1024], args[3072];
    snprintf(weights, sizeof weights, "%s/model.safetensors", m);
    const char *pristine = join(d, "pristine");
    copy(weights, pristine);
    snprintf(args, sizeof args, LOGITS "%s", m, weights);
    expect_error(args, "input");
    CHECK(same_bytes(weights, pristine));
    /* a hard link is the same file under another name */
    const char *hard = join(d, "hard.f32");
    CHECK(link(weights, hard) == 0);
    snprintf(args, sizeof args, LOGITS "%s", m, hard);
    expect_error(args, "input");
    CHECK(same_bytes(hard, pristine));
    /* an input that is not the model: the hardware configuration */
    const char *hw = join(d, "hw.json");
    write_bytes(hw, "{}\n", 3);
    snprintf(args, sizeof args, "chip -m preset:stories3m --hw %s -o %s", hw, hw);
    expect_error(args, "input");
    void *buf;
    long n = read_all(hw, &buf);
    CHECK(n == 3 && memcmp(buf, "{}\n", 3) == 0);
    if (n >= 0) free(buf);
    CHECK(count_entries(d) == 4);
}

void test_gen_refuses_existing_dir_without_force(void) {
    const char *d = fresh_dir("out-gen");
    const char *m = copy_model(d, "real");
    char args[2048], err[4096];
    snprintf(args, sizeof args, "gen --preset stories3m -o %s --seed 3", m);
    expect_error(args, "--force");
    CHECK(same_bytes(join(m, "model.safetensors"), asset("models/stories3m/model.safetensors")));
    CHECK(count_entries(m) == 3 && count_entries(d) == 1);
    /* with --force the directory is replaced whole: the old tokenizer goes with the old weights */
    snprintf(args, sizeof args, "gen --preset stories3m -o %s/ --seed 3 --force", m);
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    CHECK(count_entries(m) == 2 && !same_bytes(join(m, "model.safetensors"), asset("models/stories3m/model.safetensors")));
    CHECK(count_entries(d) == 1);
    /* an empty directory is no model: no --force needed */
    const char *empty = join(d, "empty");
    CHECK(mkdir(empty, 0755) == 0);
    snprintf(args, sizeof args, "gen --preset stories3m -o %s", empty);
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    CHECK(count_entries(empty) == 2);
    /* a directory of something else is not replaced, --force or not */
    const char *other = join(d, "other");
    CHECK(mkdir(other, 0755) == 0);
    write_bytes(join(other, "notes.txt"), "mine", 4);
    snprintf(args, sizeof args, "gen --preset stories3m -o %s --force", other);
    expect_error(args, "no model");
    CHECK(count_entries(other) == 1);
    /* nor a file, nor a link to a directory */
    const char *file = join(d, "file");
    write_bytes(file, "mine", 4);
    snprintf(args, sizeof args, "gen --preset stories3m -o %s --force", file);
    expect_error(args, "not a directory");
    CHECK(symlink("empty", join(d, "link")) == 0);
    snprintf(args, sizeof args, "gen --preset stories3m -o %s --force", join(d, "link"));
    expect_error(args, "not a directory");
    CHECK(is_kind(join(d, "link"), S_IFLNK) && count_entries(d) == 5);
    /* a .gguf follows the file rules */
    snprintf(args, sizeof args, "gen --preset stories3m -o %s", join(d, "g.gguf"));
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    expect_error(args, "--force");
}

void test_convert_refuses_existing_file_without_force(void) {
    const char *d = fresh_dir("out-convert");
    const char *out = join(d, "m.gguf");
    write_bytes(out, "an old model", 12);
    char args[2048], err[4096];
    snprintf(args, sizeof args, "convert -m %s -o %s", asset("models/stories3m"), out);
    expect_error(args, "--force");
    struct stat st;
    CHECK(stat(out, &st) == 0 && st.st_size == 12);
    snprintf(args, sizeof args, "convert -m %s -o %s --force", asset("models/stories3m"), out);
    CHECKF(bitrom(args, err, sizeof err) == 0, "%s", err);
    CHECK(stat(out, &st) == 0 && st.st_size > 100000);
    CHECK(count_entries(d) == 1);
}

/* A write error on a temporary file: the file size limit (ulimit -f, in 512-byte blocks) makes
 * write() fail with EFBIG once the output passes 50 KB, as a full disk would with ENOSPC. */
#define SMALL_DISK "sh -c 'ulimit -f 100; trap \"\" XFSZ; exec \"$0\" \"$@\"' "

void test_output_write_error_names_file(void) {
    const char *d = fresh_dir("out-full");
    char args[2048], cmd[4096], err[4096];
    snprintf(args, sizeof args, LOGITS "/dev/full", asset("models/stories3m"));
    expect_error(args, "/dev/full: write failed: No space left on device");
    static const char *const writes[] = {"convert -m %s -o %s/m.gguf", "rom -m %s -o %s/m.rom", "gen --preset stories3m -o %.0s%s/gen"};
    for (int i = 0; i < 3; i++) {
        char tail[1024];
        snprintf(tail, sizeof tail, writes[i], asset("models/stories3m"), d);
        snprintf(cmd, sizeof cmd, "timeout 60 " SMALL_DISK "%s %s", bitrom_bin(), tail);
        int rc = run_cmd(cmd, NULL, 0, err, sizeof err);
        const char *name = strrchr(tail, ' ') + 1;
        CHECKF(rc == 1, "exit %d for %s: %s", rc, tail, err);
        CHECKF(strstr(err, name) && strstr(err, "write failed: File too large"), "%s: %s", tail, err);
        CHECKF(count_entries(d) == 0, "%d files left by %s", count_entries(d), tail);
    }
}

/* Inputs that are FIFOs: before, open() waited for a writer forever. */
void test_input_fifo_rejected(void) {
    const char *d = fresh_dir("in-fifo");
    char fifo[1024];
    snprintf(fifo, sizeof fifo, "%s/fifo", d);
    CHECK(mkfifo(fifo, 0600) == 0);
    char args[3072];
    const char *m = asset("models/stories3m");
    snprintf(args, sizeof args, "tokenize --tokenizer %s -p hi", fifo);
    expect_error(args, "not a regular file");
    snprintf(args, sizeof args, "tokenize -m %s -f %s", m, fifo);
    expect_error(args, "not a regular file");
    snprintf(args, sizeof args, "rom -m %s --hw %s -o %s", m, fifo, join(d, "x.rom"));
    expect_error(args, "not a regular file");
    snprintf(args, sizeof args, LOGITS "%s --lora a=%s", m, join(d, "x.f32"), fifo);
    expect_error(args, "not a regular file");
    snprintf(args, sizeof args, "logits -m %s --tokens \"1 2\" -o %s", fifo, join(d, "x.f32"));
    expect_error(args, "is a FIFO, not a model");
    /* a sharded checkpoint whose shard is a FIFO */
    const char *sharded = copy_model(d, "sharded");
    unlink(join(sharded, "model.safetensors"));
    const char *index = "{\"weight_map\": {\"model.embed_tokens.weight\": \"shard.safetensors\"}}";
    write_bytes(join(sharded, "model.safetensors.index.json"), index, strlen(index));
    CHECK(mkfifo(join(sharded, "shard.safetensors"), 0600) == 0);
    snprintf(args, sizeof args, LOGITS "%s", sharded, join(d, "x.f32"));
    expect_error(args, "not a regular file");
    CHECK(is_kind(fifo, S_IFIFO) && count_entries(d) == 2);
    /* the library call itself, in this process: returns instead of blocking (the alarm turns a
     * regression into a failed run instead of a hung one) */
    char *text = NULL;
    br_error e;
    alarm(30);
    HCHECK(br_read_file(fifo, 1024, &text, NULL, &e) == -1 && strstr(e.msg, "FIFO") && text == NULL);
    alarm(0);
}
