/*
 * daemon.c - `skillscope start | stop | status | restart` and the pidfile.
 *
 * start re-executes this binary (/proc/self/exe) as `skillscope serve` with the same flags, in a
 * new session, stdin from /dev/null and stdout/stderr appended to <data-dir>/skillscope.log. The
 * server writes <data-dir>/skillscope.pid itself once it owns the data directory (so a foreground
 * serve can be stopped the same way) and removes it on a clean exit. start then polls GET /-/ready
 * until it answers 200, or the child exits (its part of the log is printed), or 30 s pass.
 *
 * stop sends SIGTERM to the pidfile's process and waits for it to exit (bounded), status asks the
 * server for /api/skillscope/status and prints a summary (exit 3 when nothing runs). A pidfile is
 * trusted only if its process is alive and looks like `skillscope serve` (its command line), so a
 * stale pidfile whose pid was reused never gets another process killed.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "cli/cli.h"

#define START_TIMEOUT_MS 30000
#define STOP_TIMEOUT_MS 30000
#define LOG_TAIL_LINES 20

/* ---- pidfile ---- */

void cli_pidfile_path(const config_t *c, char *out, size_t cap)
{
    snprintf(out, cap, "%s/skillscope.pid", c->data_dir);
}

int cli_pidfile_write(const config_t *c, err_t *err)
{
    char path[4096], tmp[4200];
    cli_pidfile_path(c, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return err_set(err, ERR_IO, "%s: %s", tmp, strerror(errno));
    /* Line 2 is the HTTP port, so `status`/`stop --data-dir D` find a server started on another
     * port without repeating its flags. */
    fprintf(f, "%d\n%d\n", (int)getpid(), c->http_port);
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return err_set(err, ERR_IO, "%s: %s", path, strerror(e));
    }
    return 0;
}

void cli_pidfile_remove(const config_t *c)
{
    char path[4096];
    cli_pidfile_path(c, path, sizeof path);
    FILE *f = fopen(path, "r");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid == (int)getpid())
        unlink(path);
}

/* True when pid is alive and its command line is `... skillscope ... serve ...`. */
static bool is_server(pid_t pid)
{
    if (pid <= 0 || (kill(pid, 0) != 0 && errno != EPERM))
        return false;
    char path[64], cmd[4096];
    snprintf(path, sizeof path, "/proc/%d/cmdline", (int)pid);
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    size_t n = fread(cmd, 1, sizeof cmd - 1, f);
    fclose(f);
    cmd[n] = '\0';
    bool skillscope = strstr(cmd, "skillscope") != NULL, serve = false;
    for (size_t i = 0; i < n; i += strlen(cmd + i) + 1)
        serve |= strcmp(cmd + i, "serve") == 0;
    return skillscope && serve;
}

static pid_t pidfile_read(const config_t *c)
{
    char path[4096];
    cli_pidfile_path(c, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int pid = 0;
    if (fscanf(f, "%d", &pid) != 1)
        pid = 0;
    fclose(f);
    return (pid_t)pid;
}

int cli_pidfile_port(const config_t *c)
{
    char path[4096];
    cli_pidfile_path(c, path, sizeof path);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int pid = 0, port = 0;
    if (fscanf(f, "%d %d", &pid, &port) != 2 || port <= 0 || port > 65535)
        port = 0;
    fclose(f);
    return port;
}

pid_t cli_pidfile_pid(const config_t *c)
{
    pid_t pid = pidfile_read(c);
    return is_server(pid) ? pid : 0;
}

/* ---- start ---- */

static int mkdir_p(const char *dir)
{
    char p[4096];
    snprintf(p, sizeof p, "%s", dir);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0755) != 0 && errno != EEXIST)
            return -1;
        *s = '/';
    }
    return mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Prints the last lines of path from byte offset from on. */
static void print_log_tail(const char *path, long from)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    fseek(f, 0, SEEK_END);
    long end = ftell(f);
    long start = end - from > 16384 ? end - 16384 : from;
    fseek(f, start, SEEK_SET);
    char *buf = malloc((size_t)(end - start) + 1);
    size_t n = buf ? fread(buf, 1, (size_t)(end - start), f) : 0;
    fclose(f);
    if (!buf)
        return;
    buf[n] = '\0';
    int lines = 0;
    size_t i = n;
    while (i > 0 && lines <= LOG_TAIL_LINES)
        if (buf[--i] == '\n' && i + 1 < n)
            lines++;
    const char *from_p = lines > LOG_TAIL_LINES ? buf + i + 1 : buf;
    fprintf(stderr, "--- %s (last lines)\n%s", path, from_p);
    if (n && buf[n - 1] != '\n')
        fputc('\n', stderr);
    free(buf);
}

static int start_server(config_t *c, int argc, char **argv)
{
    pid_t running = cli_pidfile_pid(c);
    if (running) {
        fprintf(stderr,
                "skillscope start: already running (pid %d, data dir %s); use skillscope "
                "restart to apply new settings\n",
                (int)running, c->data_dir);
        return CLI_EXIT_ERROR;
    }
    if (mkdir_p(c->data_dir) != 0) {
        fprintf(stderr, "skillscope start: cannot create %s: %s\n", c->data_dir, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    char log_path[4096];
    snprintf(log_path, sizeof log_path, "%s/skillscope.log", c->data_dir);
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) {
        fprintf(stderr, "skillscope start: cannot open %s: %s\n", log_path, strerror(errno));
        return CLI_EXIT_ERROR;
    }
    long log_start = lseek(log_fd, 0, SEEK_END);

    char **args = calloc((size_t)argc + 2, sizeof *args);
    args[0] = "skillscope";
    args[1] = "serve";
    for (int i = 1; i < argc; i++)
        args[i + 1] = argv[i];
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "skillscope start: fork: %s\n", strerror(errno));
        close(log_fd);
        free(args);
        return CLI_EXIT_ERROR;
    }
    if (pid == 0) {
        setsid();
        int null_fd = open("/dev/null", O_RDONLY);
        if (null_fd >= 0)
            dup2(null_fd, STDIN_FILENO);
        dup2(log_fd, STDOUT_FILENO);
        dup2(log_fd, STDERR_FILENO);
        execv("/proc/self/exe", args);
        dprintf(STDERR_FILENO, "skillscope start: exec /proc/self/exe: %s\n", strerror(errno));
        _exit(127);
    }
    close(log_fd);
    free(args);

    const char *host = cli_client_host(c, false);
    int64_t deadline = clock_now_ms() + START_TIMEOUT_MS;
    for (;;) {
        int st;
        pid_t w = waitpid(pid, &st, WNOHANG);
        if (w == pid) {
            if (WIFEXITED(st))
                fprintf(stderr, "skillscope start: the server exited with status %d\n",
                        WEXITSTATUS(st));
            else
                fprintf(stderr, "skillscope start: the server was killed by signal %d\n",
                        WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            print_log_tail(log_path, log_start);
            return CLI_EXIT_ERROR;
        }
        int status = 0;
        buf_t body = BUF_INIT;
        err_t err;
        int rc = cli_http_get(host, c->http_port, "/-/ready", 1000, &status, &body, &err);
        buf_deinit(&body);
        /* Ready, and it is our child answering (not another server on the same port). */
        if (rc == 0 && status == 200 && pidfile_read(c) == pid)
            break;
        if (clock_now_ms() > deadline) {
            fprintf(stderr,
                    "skillscope start: not ready after %d s (pid %d is still starting; see %s)\n",
                    START_TIMEOUT_MS / 1000, (int)pid, log_path);
            return CLI_EXIT_ERROR;
        }
        struct timespec ts = {0, 50 * 1000000};
        nanosleep(&ts, NULL);
    }
    printf("Skillscope started (pid %d, log %s).\n", (int)pid, log_path);
    cli_print_endpoints(stdout, c);
    return CLI_EXIT_OK;
}

int cli_start_main(int argc, char **argv)
{
    config_t c;
    config_init(&c);
    int code = cli_config(&c, "start", argc, argv,
                          "Starts the server in the background with the same flags as `skillscope "
                          "serve`.\nIt writes <data-dir>/skillscope.pid and appends its output to "
                          "<data-dir>/skillscope.log;\nstart returns once the server is ready.");
    if (code < 0)
        code = start_server(&c, argc, argv);
    config_deinit(&c);
    return code;
}

/* ---- stop ---- */

/* 0 stopped, 1 timed out, 3 was not running. */
static int stop_server(config_t *c, const char *cmd, bool quiet_if_stopped)
{
    pid_t pid = cli_pidfile_pid(c);
    if (!pid) {
        char path[4096];
        cli_pidfile_path(c, path, sizeof path);
        if (pidfile_read(c))
            unlink(path); /* stale: its process is gone */
        if (!quiet_if_stopped)
            printf("skillscope is not running (no server pid in %s)\n", path);
        return CLI_EXIT_NOT_RUNNING;
    }
    if (kill(pid, SIGTERM) != 0) {
        fprintf(stderr, "skillscope %s: cannot signal pid %d: %s\n", cmd, (int)pid,
                strerror(errno));
        return CLI_EXIT_ERROR;
    }
    int64_t deadline = clock_now_ms() + STOP_TIMEOUT_MS;
    while (is_server(pid)) {
        if (clock_now_ms() > deadline) {
            fprintf(stderr,
                    "skillscope %s: pid %d did not exit within %d s; it may still be flushing "
                    "data (kill -9 %d forces it; the WAL is replayed at the next start)\n",
                    cmd, (int)pid, STOP_TIMEOUT_MS / 1000, (int)pid);
            return CLI_EXIT_ERROR;
        }
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
    }
    char path[4096];
    cli_pidfile_path(c, path, sizeof path);
    if (pidfile_read(c) == pid)
        unlink(path);
    printf("Skillscope stopped (pid %d).\n", (int)pid);
    return CLI_EXIT_OK;
}

int cli_stop_main(int argc, char **argv)
{
    config_t c;
    config_init(&c);
    int code = cli_config(&c, "stop", argc, argv,
                          "Stops the server running on the data directory (SIGTERM to the pid in "
                          "<data-dir>/skillscope.pid),\nwaiting until it has flushed its data and "
                          "exited. Takes the same flags as serve.");
    if (code < 0) {
        code = stop_server(&c, "stop", false);
        if (code == CLI_EXIT_NOT_RUNNING)
            code = CLI_EXIT_OK;
    }
    config_deinit(&c);
    return code;
}

int cli_restart_main(int argc, char **argv)
{
    config_t c;
    config_init(&c);
    int code = cli_config(&c, "restart", argc, argv,
                          "Stops the server (if it runs), then starts it in the background with "
                          "these flags.");
    if (code < 0) {
        code = stop_server(&c, "restart", true);
        if (code == CLI_EXIT_OK || code == CLI_EXIT_NOT_RUNNING)
            code = start_server(&c, argc, argv);
    }
    config_deinit(&c);
    return code;
}

/* ---- status ---- */

static double num(json_t *o, const char *path)
{
    json_t *v = o;
    char key[64];
    for (const char *p = path; v && *p;) {
        size_t n = strcspn(p, ".");
        snprintf(key, sizeof key, "%.*s", (int)n, p);
        v = json_object_get(v, key);
        p += n + (p[n] == '.');
    }
    return v && json_is_number(v) ? json_number_value(v) : 0;
}

static void human_bytes(char *out, size_t cap, double b)
{
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    int u = 0;
    while (b >= 1024 && u < 4) {
        b /= 1024;
        u++;
    }
    snprintf(out, cap, u ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static void human_duration(char *out, size_t cap, double s)
{
    long t = (long)s;
    if (t >= 86400)
        snprintf(out, cap, "%ldd %ldh %ldm", t / 86400, t % 86400 / 3600, t % 3600 / 60);
    else if (t >= 3600)
        snprintf(out, cap, "%ldh %ldm %lds", t / 3600, t % 3600 / 60, t % 60);
    else if (t >= 60)
        snprintf(out, cap, "%ldm %lds", t / 60, t % 60);
    else
        snprintf(out, cap, "%.1fs", s);
}

static int print_status(const config_t *c, pid_t pid, const buf_t *body)
{
    json_error_t je;
    json_t *j = json_loadb((const char *)body->pos, buf_len(body), 0, &je);
    if (!j || !json_is_object(j)) {
        fprintf(stderr, "skillscope status: unexpected answer from the server: %s\n", je.text);
        json_decref(j);
        return CLI_EXIT_ERROR;
    }
    char up[64], disk[64];
    human_duration(up, sizeof up, num(j, "uptime_seconds"));
    human_bytes(disk, sizeof disk, num(j, "disk_bytes"));
    const char *version = json_string_value(json_object_get(j, "version"));
    bool ready = json_is_true(json_object_get(j, "ready"));
    printf("Skillscope %s is running", version ? version : "?");
    if (pid)
        printf(" (pid %d)", (int)pid);
    printf(", up %s%s.\n", up, ready ? "" : ", NOT READY");
    json_t *listen = json_object_get(j, "listen");
    for (size_t i = 0; i < json_array_size(listen); i++) {
        json_t *l = json_array_get(listen, i);
        printf("  %-10s %s\n", json_string_value(json_object_get(l, "name")),
               json_string_value(json_object_get(l, "address")));
    }
    const char *dir = json_string_value(json_object_get(j, "data_dir"));
    printf("  data       %s (%s on disk)\n\nReceived (accepted / refused):\n",
           dir ? dir : c->data_dir, disk);
    static const char *const sig[] = {"traces", "metrics", "logs"};
    static const char *const what[] = {"spans", "data points", "log records"};
    for (int i = 0; i < 3; i++) {
        char a[96], r[96];
        snprintf(a, sizeof a, "received.%s.accepted", sig[i]);
        snprintf(r, sizeof r, "received.%s.refused", sig[i]);
        printf("  %-8s %.0f / %.0f %s\n", sig[i], num(j, a), num(j, r), what[i]);
    }
    if (json_object_get(j, "storage")) {
        printf("\nStored:\n");
        printf("  series       %.0f in memory\n", num(j, "storage.head_series"));
        printf("  samples      %.0f in memory, %.0f in blocks\n", num(j, "storage.head_samples"),
               num(j, "storage.block_samples"));
        printf("  spans        %.0f in memory (%.0f traces), %.0f in blocks\n",
               num(j, "storage.head_spans"), num(j, "storage.head_traces"),
               num(j, "storage.block_spans"));
        printf("  log entries  %.0f in memory (%.0f streams), %.0f in blocks\n",
               num(j, "storage.head_log_entries"), num(j, "storage.head_streams"),
               num(j, "storage.block_log_entries"));
        char wal[64], blocks[64];
        human_bytes(wal, sizeof wal, num(j, "storage.wal_bytes_on_disk"));
        human_bytes(blocks, sizeof blocks, num(j, "storage.block_bytes"));
        printf("  blocks       %.0f (%s), WAL %s in %.0f segments\n", num(j, "storage.blocks"),
               blocks, wal, num(j, "storage.wal_segments"));
    }
    json_decref(j);
    return CLI_EXIT_OK;
}

int cli_status_main(int argc, char **argv)
{
    config_t c;
    config_init(&c);
    int code =
        cli_config(&c, "status", argc, argv,
                   "Shows whether a server runs on the configured port / data directory, "
                   "and what it\nreceived and stores. Exit status 3 when it is not running.");
    if (code >= 0) {
        config_deinit(&c);
        return code;
    }
    pid_t pid = cli_pidfile_pid(&c);
    if (pid && cli_pidfile_port(&c))
        c.http_port = cli_pidfile_port(&c); /* the port the running server really uses */
    const char *host = cli_client_host(&c, false);
    int status = 0;
    buf_t body = BUF_INIT;
    err_t err;
    int rc = cli_http_get(host, c.http_port, "/api/skillscope/status", 5000, &status, &body, &err);
    if (rc == 0 && status == 200) {
        code = print_status(&c, pid, &body);
    } else if (pid) {
        if (rc == 0)
            snprintf(err.msg, sizeof err.msg, "HTTP status %d", status);
        fprintf(stderr, "skillscope (pid %d) is running but does not answer on http://%s:%d: %s\n",
                (int)pid, cli_client_host(&c, true), c.http_port, err.msg);
        code = CLI_EXIT_ERROR;
    } else {
        printf("skillscope is not running (nothing answers on http://%s:%d, no server pid in "
               "%s)\n",
               cli_client_host(&c, true), c.http_port, c.data_dir);
        code = CLI_EXIT_NOT_RUNNING;
    }
    buf_deinit(&body);
    config_deinit(&c);
    return code;
}
