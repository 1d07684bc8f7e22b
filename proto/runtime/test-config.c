/* Unit tests: the YAML configuration */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include <cmocka.h>

#include "proto/runtime/config.h"
#include "proto/util/cleanup.h"

#define KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

/* The smallest valid file: required keys, TLS off. */
#define MINIMAL                                    \
        "edge:\n"                                  \
        "  device_id: edge-1\n"                    \
        "  hub_hostname: myhub.azure-devices.net\n" \
        "  edgehub_key: " KEY "\n"                 \
        "listeners:\n"                             \
        "  tls:\n"                                 \
        "    port: 0\n"

static int parse_str(const char *yaml, Config **ret, char **ret_error, char **ret_warnings) {
        FILE *f = fmemopen((void *) yaml, strlen(yaml), "r");
        assert_non_null(f);
        int r = config_parse(f, "test.yaml", ret, ret_error, ret_warnings);
        fclose(f);
        return r;
}

static void test_full(void **state) {
        static const char yaml[] =
                "# every key\n"
                "edge:\n"
                "  device_id: edge-1\n"
                "  hub_hostname: myhub.azure-devices.net\n"
                "  gateway_hostname: edge-gw.local\n"
                "  edgehub_key: \"" KEY "\"\n"
                "upstream:\n"
                "  host: upstream.example\n"
                "  mqtt_port: 18883\n"
                "  https_port: '8443'\n"
                "  ca_file: /etc/ssl/ca.pem\n"
                "  scope_refresh: 1h30m\n"
                "  idle_timeout: 90\n"
                "  token_ttl: 1d\n"
                "listeners:\n"
                "  tls: {port: 9883, bind: '::', cert_file: /c.pem, key_file: /k.pem, client_ca_file: /ca.pem}\n"
                "  plain:\n"
                "    port: 1883\n"
                "    bind: 0.0.0.0\n"
                "storage:\n"
                "  dir: /data/edgehub\n"
                "  max_bytes: 512MiB\n"
                "  overflow: reject_new\n"
                "  sync: always\n"
                "  sync_interval: 250ms\n"
                "store_and_forward:\n"
                "  time_to_live: 30m\n"
                "runtime_dir: /tmp/edgehub\n"
                "log_level: debug\n"
                "runner:\n"
                "  mosquitto: /opt/mosquitto\n"
                "  libexec_dir: /opt/edgehub\n"
                "  plugin: /opt/edgehub/p.so\n";
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL, *sock = NULL;

        assert_int_equal(parse_str(yaml, &c, &error, &warnings), 0);
        assert_null(error);
        assert_null(warnings);
        assert_string_equal(c->source, "test.yaml");
        assert_string_equal(c->edge_device_id, "edge-1");
        assert_string_equal(c->hub_hostname, "myhub.azure-devices.net");
        assert_string_equal(c->gateway_hostname, "edge-gw.local");
        assert_string_equal(c->edgehub_key, KEY);
        assert_string_equal(c->upstream_host, "upstream.example");
        assert_int_equal(c->upstream_mqtt_port, 18883);
        assert_int_equal(c->upstream_https_port, 8443);
        assert_string_equal(c->upstream_ca_file, "/etc/ssl/ca.pem");
        assert_int_equal(c->scope_refresh_sec, 5400);
        assert_int_equal(c->idle_timeout_sec, 90);
        assert_int_equal(c->token_ttl_sec, 86400);
        assert_int_equal(c->tls_port, 9883);
        assert_string_equal(c->tls_bind, "::");
        assert_string_equal(c->tls_cert_file, "/c.pem");
        assert_string_equal(c->tls_key_file, "/k.pem");
        assert_string_equal(c->tls_client_ca_file, "/ca.pem");
        assert_int_equal(c->plain_port, 1883);
        assert_string_equal(c->plain_bind, "0.0.0.0");
        assert_string_equal(c->storage_dir, "/data/edgehub");
        assert_int_equal(c->max_bytes, 512 * 1024 * 1024);
        assert_int_equal(c->overflow, OVERFLOW_REJECT_NEW);
        assert_int_equal(c->sync, SYNC_ALWAYS);
        assert_int_equal(c->sync_interval_msec, 250);
        assert_int_equal(c->ttl_sec, 1800);
        assert_string_equal(c->runtime_dir, "/tmp/edgehub");
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_string_equal(c->mosquitto_path, "/opt/mosquitto");
        assert_string_equal(c->libexec_dir, "/opt/edgehub");
        assert_string_equal(c->plugin_path, "/opt/edgehub/p.so");

        assert_int_equal(config_socket_path(c, SOCKET_HUB_STORE, &sock), 0);
        assert_string_equal(sock, "/tmp/edgehub/hub-store.sock");
        char *bad = NULL;
        assert_int_equal(config_socket_path(c, "", &bad), -EINVAL);
        assert_int_equal(config_socket_path(c, "../x", &bad), -EINVAL);
        assert_null(bad);
}

static void test_defaults(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;

        assert_int_equal(parse_str(MINIMAL, &c, &error, &warnings), 0);
        assert_null(error);
        assert_null(warnings);
        assert_string_equal(c->gateway_hostname, "myhub.azure-devices.net");
        assert_string_equal(c->upstream_host, "myhub.azure-devices.net");
        assert_int_equal(c->upstream_mqtt_port, 8883);
        assert_int_equal(c->upstream_https_port, 443);
        assert_null(c->upstream_ca_file);
        assert_int_equal(c->scope_refresh_sec, 3600);
        assert_int_equal(c->idle_timeout_sec, 300);
        assert_int_equal(c->token_ttl_sec, 3600);
        assert_int_equal(c->connect_rate, 20);
        assert_int_equal(c->tls_port, 0);
        assert_string_equal(c->tls_bind, "0.0.0.0");
        assert_null(c->tls_cert_file);
        assert_null(c->tls_key_file);
        assert_null(c->tls_client_ca_file);
        assert_int_equal(c->plain_port, 0);
        assert_string_equal(c->plain_bind, "127.0.0.1");
        assert_int_equal(c->max_token_lifetime_sec, 365 * 86400);
        assert_int_equal(c->twin_queue_max_bytes, 256 * 1024);
        assert_string_equal(c->storage_dir, "/var/lib/edgehub");
        assert_true(c->max_bytes == UINT64_C(1) << 30);
        assert_int_equal(c->overflow, OVERFLOW_DROP_OLDEST);
        assert_int_equal(c->sync, SYNC_PERIODIC);
        assert_int_equal(c->sync_interval_msec, 1000);
        assert_int_equal(c->ttl_sec, 7200);
        assert_string_equal(c->runtime_dir, "/run/edgehub");
        assert_int_equal(c->log_level, LOG_INFO);
        assert_string_equal(c->mosquitto_path, "/usr/sbin/mosquitto");
        assert_null(c->libexec_dir);
        assert_null(c->plugin_path);
        assert_int_equal(c->module_uids.first, 620000);
        assert_int_equal(c->module_uids.last, 629999);
        assert_string_equal(c->modules_dir, "/var/lib/edgehub-modules");
        assert_string_equal(c->access_read_group, "adm");
        assert_string_equal(c->access_admin_group, "sudo");
        assert_string_equal(c->runner_user, "edgehub");
}

/* A value in a file otherwise valid: MINIMAL + "section:\n  key: value\n" (line 8, column 8 for storage). */
static void test_values(void **state) {
        static const struct {
                const char *yaml; /* appended to MINIMAL */
                int ok;
                const char *error; /* the whole line, when !ok */
        } cases[] = {
                { "storage:\n  max_bytes: 1048576\n", 1 },
                { "storage:\n  max_bytes: 1MiB\n", 1 },
                { "storage:\n  max_bytes: 10MB\n", 1 },
                { "storage:\n  max_bytes: 100 KiB\n", 0,
                  "test.yaml:9:14: key 'storage.max_bytes': must be at least 1MiB (is 102400)" },
                { "storage:\n  max_bytes: 1048575\n", 0,
                  "test.yaml:9:14: key 'storage.max_bytes': must be at least 1MiB (is 1048575)" },
                { "storage:\n  max_bytes: abc\n", 0, "test.yaml:9:14: key 'storage.max_bytes': invalid size 'abc'" },
                { "storage:\n  max_bytes: 1.5GiB\n", 0,
                  "test.yaml:9:14: key 'storage.max_bytes': invalid size '1.5GiB'" },
                { "storage:\n  max_bytes: -1\n", 0, "test.yaml:9:14: key 'storage.max_bytes': invalid size '-1'" },
                { "storage:\n  max_bytes: 1gib\n", 0, "test.yaml:9:14: key 'storage.max_bytes': invalid size '1gib'" },
                { "storage:\n  max_bytes: 99999999999999999999\n", 0,
                  "test.yaml:9:14: key 'storage.max_bytes': invalid size '99999999999999999999'" },
                { "storage:\n  max_bytes: 17179869184TiB\n", 0,
                  "test.yaml:9:14: key 'storage.max_bytes': invalid size '17179869184TiB'" },
                { "storage:\n  max_bytes:\n    a: 1\n", 0,
                  "test.yaml:10:5: key 'storage.max_bytes': expected a scalar, got a mapping" },
                { "storage:\n  max_bytes: [1]\n", 0,
                  "test.yaml:9:14: key 'storage.max_bytes': expected a scalar, got a sequence" },
                { "storage: 5\n", 0, "test.yaml:8:10: key 'storage': expected a mapping, got a scalar" },
                { "storage:\n", 1 },
                { "storage:\n  dir: var/lib\n", 0, "test.yaml:9:8: key 'storage.dir': not an absolute path 'var/lib'" },
                { "storage:\n  overflow: drop\n", 0,
                  "test.yaml:9:13: key 'storage.overflow': invalid overflow policy (drop_oldest, reject_new) 'drop'" },
                { "storage:\n  twin_queue_max_bytes: 64KiB\n", 1 },
                { "storage:\n  twin_queue_max_bytes: 65535\n", 0,
                  "test.yaml:9:25: key 'storage.twin_queue_max_bytes': must be between 64KiB and storage.max_bytes" },
                { "storage:\n  twin_queue_max_bytes: 2GiB\n", 0,
                  "test.yaml:9:25: key 'storage.twin_queue_max_bytes': must be between 64KiB and storage.max_bytes" },
                { "storage:\n  sync: never\n", 0,
                  "test.yaml:9:9: key 'storage.sync': invalid sync policy (periodic, always) 'never'" },
                { "storage:\n  sync_interval: 500ms\n", 1 },
                { "storage:\n  sync_interval: 0\n", 0,
                  "test.yaml:9:18: key 'storage.sync_interval': must be at least 1ms" },
                { "storage:\n  sync_interval: 5x\n", 0,
                  "test.yaml:9:18: key 'storage.sync_interval': invalid duration '5x'" },
                { "store_and_forward:\n  time_to_live: 1s\n", 1 },
                { "store_and_forward:\n  time_to_live: 0\n", 0,
                  "test.yaml:9:17: key 'store_and_forward.time_to_live': must be at least 1s" },
                { "store_and_forward:\n  time_to_live: 1500ms\n", 0,
                  "test.yaml:9:17: key 'store_and_forward.time_to_live': invalid duration '1500ms'" },
                { "store_and_forward:\n  time_to_live: 2h\n", 1 },
                { "upstream:\n  connect_rate: 100\n", 1 },
                { "upstream:\n  connect_rate: 0\n", 0,
                  "test.yaml:9:17: key 'upstream.connect_rate': invalid rate (1..1000 connections per second) '0'" },
                { "upstream:\n  connect_rate: 1001\n", 0,
                  "test.yaml:9:17: key 'upstream.connect_rate': invalid rate (1..1000 connections per second) '1001'" },
                { "store_and_forward:\n  time_to_live: h\n", 0,
                  "test.yaml:9:17: key 'store_and_forward.time_to_live': invalid duration 'h'" },
                { "store_and_forward:\n  time_to_live: 1h 30m\n", 0,
                  "test.yaml:9:17: key 'store_and_forward.time_to_live': invalid duration '1h 30m'" },
                { "upstream:\n  mqtt_port: 0\n", 0, "test.yaml:9:14: key 'upstream.mqtt_port': invalid port '0'" },
                { "upstream:\n  mqtt_port: 65536\n", 0,
                  "test.yaml:9:14: key 'upstream.mqtt_port': invalid port '65536'" },
                { "upstream:\n  mqtt_port: 65535\n", 1 },
                { "upstream:\n  ca_file: ~\n", 1 },
                { "upstream:\n  host: 'bad host'\n", 0,
                  "test.yaml:9:9: key 'upstream.host': invalid host name 'bad host'" },
                { "listeners:\n  plain:\n    port: 1883\n", 1 },
                { "listeners:\n  max_token_lifetime: 1d\n", 1 },
                { "listeners:\n  max_token_lifetime: 30s\n", 0,
                  "test.yaml:9:23: key 'listeners.max_token_lifetime': must be between 1min and 36500d" },
                { "listeners:\n  max_token_lifetime: 36501d\n", 0,
                  "test.yaml:9:23: key 'listeners.max_token_lifetime': must be between 1min and 36500d" },
                { "listeners:\n  max_token_lifetime: forever\n", 0,
                  "test.yaml:9:23: key 'listeners.max_token_lifetime': invalid duration 'forever'" },
                { "listeners:\n  plain:\n    port: x\n", 0,
                  "test.yaml:10:11: key 'listeners.plain.port': invalid port 'x'" },
                { "log_level: warning\n", 1 },
                { "log_level: loud\n", 0,
                  "test.yaml:8:12: key 'log_level': invalid log level (error, warning, notice, info, debug) 'loud'" },
                { "runtime_dir: \"line\\nbreak\"\n", 0,
                  "test.yaml:8:14: key 'runtime_dir': not an absolute path 'line?break'" },
                { "runtime_dir: \"/run\\0x\"\n", 0, "test.yaml:8:14: key 'runtime_dir': contains a NUL byte" },
                { "runner:\n  plugin: rel.so\n", 0, "test.yaml:9:11: key 'runner.plugin': not an absolute path 'rel.so'" },
                { "listeners:\n  tls:\n    client_ca_file: ca.pem\n", 0,
                  "test.yaml:10:21: key 'listeners.tls.client_ca_file': not an absolute path 'ca.pem'" },
                { "listeners:\n  tls:\n    client_ca_file: /ca.pem\n", 0,
                  "test.yaml:10:21: key 'listeners.tls.client_ca_file': needs the TLS listener (listeners.tls.port is 0)" },
                /* Who may use the sockets, and the uids modules run as. */
                { "access:\n  read_group: edgehub-read\n  admin_group: ''\n", 1 },
                { "access:\n  read_group: Wheel\n", 0, "test.yaml:9:15: key 'access.read_group': invalid group name 'Wheel'" },
                { "access:\n  admin_group: 'a b'\n", 0,
                  "test.yaml:9:16: key 'access.admin_group': invalid group name 'a b'" },
                { "agent:\n  module_uids: 100000-100009\n", 1 },
                { "agent:\n  module_uids: 60000-60100\n", 0,
                  "test.yaml:9:16: key 'agent.module_uids': invalid uid range (FIRST-LAST, 65536..2147483647, at most "
                  "65536 ids) '60000-60100'" },
                { "agent:\n  module_uids: 100010-100009\n", 0,
                  "test.yaml:9:16: key 'agent.module_uids': invalid uid range (FIRST-LAST, 65536..2147483647, at most "
                  "65536 ids) '100010-100009'" },
                { "agent:\n  module_uids: 100000-200000\n", 0,
                  "test.yaml:9:16: key 'agent.module_uids': invalid uid range (FIRST-LAST, 65536..2147483647, at most "
                  "65536 ids) '100000-200000'" },
                { "agent:\n  module_uids: 2147483600-2147483648\n", 0,
                  "test.yaml:9:16: key 'agent.module_uids': invalid uid range (FIRST-LAST, 65536..2147483647, at most "
                  "65536 ids) '2147483600-2147483648'" },
                { "agent:\n  module_uids: 100000\n", 0,
                  "test.yaml:9:16: key 'agent.module_uids': invalid uid range (FIRST-LAST, 65536..2147483647, at most "
                  "65536 ids) '100000'" },
                /* Duplicates, also across two spellings of a section. */
                { "log_level: info\nlog_level: debug\n", 0,
                  "test.yaml:9:12: key 'log_level': duplicate (first set at line 8)" },
                { "edge:\n  device_id: other\n", 0,
                  "test.yaml:9:14: key 'edge.device_id': duplicate (first set at line 2)" },
                /* Syntax errors are one line too. */
                { "storage: [\n", 0,
                  "test.yaml:9:1: invalid YAML: did not find expected node content while parsing a flow node" },
                { "storage:\n  dir: /a\n dir: /b\n", 0,
                  "test.yaml:10:2: invalid YAML: did not find expected key while parsing a block mapping" },
                { "x: *nope\n", 0, "test.yaml:8:4: invalid YAML: found undefined alias" },
                { "---\na: 1\n", 0, "test.yaml:9:1: more than one YAML document" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *yaml = NULL, *error = NULL, *warnings = NULL;
                Config *c = NULL;

                assert_true(asprintf(&yaml, "%s%s", MINIMAL, cases[i].yaml) > 0);
                int r = parse_str(yaml, &c, &error, &warnings);
                if (cases[i].ok) {
                        if (r != 0)
                                fail_msg("case %zu '%s': failed: %s", i, cases[i].yaml, error);
                        assert_null(error);
                        config_free(c);
                        continue;
                }
                if (r != -EINVAL)
                        fail_msg("case %zu '%s': got %d, want -EINVAL", i, cases[i].yaml, r);
                assert_null(c);
                assert_non_null(error);
                if (strcmp(error, cases[i].error) != 0)
                        fail_msg("case %zu:\n  got  %s\n  want %s", i, error, cases[i].error);
        }
}

static void test_required(void **state) {
        static const struct {
                const char *yaml, *error;
        } cases[] = {
                { "", "test.yaml: missing required key 'edge.device_id'" },
                { "# nothing\n", "test.yaml: missing required key 'edge.device_id'" },
                { "edge:\n  device_id: e\n", "test.yaml: missing required key 'edge.hub_hostname'" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n", "test.yaml: missing required key 'edge.edgehub_key'" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n  edgehub_key: " KEY "\n",
                  "test.yaml: missing required key 'listeners.tls.cert_file' (listeners.tls.port is not 0)" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n  edgehub_key: " KEY "\n"
                  "listeners:\n  tls:\n    cert_file: /c\n",
                  "test.yaml: missing required key 'listeners.tls.key_file' (listeners.tls.port is not 0)" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n  edgehub_key: ~\n",
                  "test.yaml: missing required key 'edge.edgehub_key'" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n  edgehub_key: " KEY "\n"
                  "listeners:\n  tls: {port: 1883, cert_file: /c, key_file: /k}\n  plain: {port: 1883}\n",
                  "test.yaml:7:17: key 'listeners.plain.port': same port as listeners.tls.port (1883)" },
                { "- a\n- b\n", "test.yaml:1:1: expected a mapping at the top, got a sequence" },
                { "just text\n", "test.yaml:1:1: expected a mapping at the top, got a scalar" },
                { "edge:\n  device_id: 'a/b'\n", "test.yaml:2:14: key 'edge.device_id': invalid IoT Hub id 'a/b'" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n  edgehub_key: c2hvcnQ=\n",
                  "test.yaml:4:16: key 'edge.edgehub_key': invalid key (must be base64 of 16..64 bytes)" },
                { "edge:\n  device_id: e\n  hub_hostname: h\n  edgehub_key: not-base64-but-quite-long-enough-to-pass\n",
                  "test.yaml:4:16: key 'edge.edgehub_key': invalid key (must be base64 of 16..64 bytes)" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL, *warnings = NULL;
                Config *c = NULL;

                int r = parse_str(cases[i].yaml, &c, &error, &warnings);
                if (r != -EINVAL)
                        fail_msg("case %zu: got %d, want -EINVAL", i, r);
                assert_null(c);
                if (!error || strcmp(error, cases[i].error) != 0)
                        fail_msg("case %zu:\n  got  %s\n  want %s", i, error, cases[i].error);
        }
}

static void test_unknown_keys(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;

        assert_int_equal(parse_str(MINIMAL "storage:\n  max_byte: 1GiB\n  extra: {a: 1}\nfoo: bar\n"
                                           "storage.dir: /x\nlisteners:\n  quic:\n    port: 1\n",
                                   &c, &error, &warnings),
                         0);
        assert_null(error);
        assert_string_equal(warnings,
                            "test.yaml:9:3: unknown key 'storage.max_byte', ignoring\n"
                            "test.yaml:10:3: unknown key 'storage.extra', ignoring\n"
                            "test.yaml:11:1: unknown key 'foo', ignoring\n"
                            "test.yaml:12:1: unknown key 'storage.dir', ignoring\n"
                            "test.yaml:14:3: unknown key 'listeners.quic', ignoring");
        assert_string_equal(c->storage_dir, "/var/lib/edgehub");

        /* NULL error/warning pointers are fine. */
        Config *c2 = NULL;
        assert_int_equal(parse_str(MINIMAL "x: 1\n", &c2, NULL, NULL), 0);
        c2 = config_free(c2);
        assert_int_equal(parse_str("x: 1\n", &c2, NULL, NULL), -EINVAL);
        assert_null(c2);
}

static void test_load(void **state) {
        Config *c = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;

        assert_int_equal(config_load("/nonexistent/edgehub.yaml", &c, &error, &warnings), -ENOENT);
        assert_null(c);
        assert_string_equal(error, "/nonexistent/edgehub.yaml: cannot open: No such file or directory");
}

/* The shipped example is documentation: it must parse, cleanly, to the defaults it claims. */
static void test_example(void **state) {
        _cleanup_(config_freep) Config *c = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;

        assert_int_equal(config_load(CONFIG_EXAMPLE, &c, &error, &warnings), 0);
        assert_null(error);
        assert_null(warnings);
        assert_int_equal(c->tls_port, 8883);
        assert_true(c->max_bytes == UINT64_C(1) << 30);
        assert_int_equal(c->ttl_sec, 7200);
        assert_int_equal(c->sync_interval_msec, 1000);
        assert_int_equal(c->scope_refresh_sec, 3600);
        assert_int_equal(c->idle_timeout_sec, 300);
        assert_string_equal(c->gateway_hostname, c->hub_hostname);
        assert_int_equal(c->routes.n, 1);
        assert_string_equal(c->routes.specs[0].name, CONFIG_ROUTE_DEFAULT_NAME);
        assert_string_equal(c->routes.specs[0].text, CONFIG_ROUTE_DEFAULT);
}

static void test_routes(void **state) {
        Config *c = NULL;
        _cleanup_free_ char *error = NULL, *warnings = NULL;

        /* Absent, or empty: the one default route. */
        assert_int_equal(parse_str(MINIMAL, &c, &error, &warnings), 0);
        assert_int_equal(c->routes.n, 1);
        assert_string_equal(c->routes.specs[0].name, "upstream");
        assert_string_equal(c->routes.specs[0].text, "FROM /messages/* INTO $upstream");
        assert_int_equal(c->routes.specs[0].priority, 0);
        assert_int_equal(c->routes.specs[0].time_to_live_secs, 0);
        c = config_free(c);
        assert_int_equal(parse_str(MINIMAL "routes:\n", &c, &error, &warnings), 0);
        assert_int_equal(c->routes.n, 1);
        c = config_free(c);

        /* An empty map routes nothing. */
        assert_int_equal(parse_str(MINIMAL "routes: {}\n", &c, &error, &warnings), 0);
        assert_int_equal(c->routes.n, 0);
        c = config_free(c);

        assert_int_equal(parse_str(MINIMAL
                                   "routes:\n"
                                   "  up: FROM /messages/* INTO $upstream\n"
                                   "  alerts:\n"
                                   "    route: \"FROM /messages/* WHERE alert = 'true' INTO $upstream\"\n"
                                   "    priority: 1\n"
                                   "    time_to_live_secs: 86400\n"
                                   "    color: red\n"
                                   "  f: {route: 'FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint(\"/modules/b/inputs/i\")'}\n",
                                   &c, &error, &warnings),
                         0);
        assert_null(error);
        assert_string_equal(warnings, "test.yaml:14:5: unknown key 'routes.alerts.color', ignoring");
        assert_int_equal(c->routes.n, 3);
        assert_string_equal(c->routes.specs[1].name, "alerts");
        assert_string_equal(c->routes.specs[1].text, "FROM /messages/* WHERE alert = 'true' INTO $upstream");
        assert_int_equal(c->routes.specs[1].priority, 1);
        assert_int_equal(c->routes.specs[1].time_to_live_secs, 86400);
        assert_string_equal(c->routes.specs[2].text,
                            "FROM /messages/modules/a/outputs/o INTO BrokeredEndpoint(\"/modules/b/inputs/i\")");
        assert_int_equal(c->routes.specs[2].priority, 0);
        c = config_free(c);
        free(TAKE_PTR(warnings));

        static const struct {
                const char *yaml;
                const char *error;
        } bad[] = {
                { "routes:\n  r: FROM /messages/* INTO nowhere\n",
                  "test.yaml:9:6: key 'routes.r': invalid route: position 23: expected $upstream or "
                  "BrokeredEndpoint(\"/modules/{module}/inputs/{input}\"), found 'nowhere'" },
                { "routes:\n  r:\n    route: FROM /x INTO $upstream\n",
                  "test.yaml:10:12: key 'routes.r': invalid route: position 7: expected 'messages', "
                  "'twinChangeNotifications' or '*', found 'x'" },
                { "routes:\n  r: {route: 'FROM /* INTO $upstream', priority: 10}\n",
                  "test.yaml:9:50: key 'routes.r.priority': invalid number '10' (0..9)" },
                { "routes:\n  r: {route: 'FROM /* INTO $upstream', time_to_live_secs: -1}\n",
                  "test.yaml:9:59: key 'routes.r.time_to_live_secs': invalid number '-1' (0..4294967295)" },
                { "routes:\n  r: {priority: 1}\n", "test.yaml:9:6: key 'routes.r': missing 'route'" },
                { "routes:\n  r:\n", "test.yaml:9:5: key 'routes.r': expected a route or a mapping, got nothing" },
                { "routes:\n  r: [a]\n", "test.yaml:9:6: key 'routes.r': expected a route or a mapping, got a sequence" },
                { "routes:\n  r: {route: [a]}\n", "test.yaml:9:14: key 'routes.r': expected a scalar, got a sequence" },
                { "routes: [a]\n", "test.yaml:8:9: key 'routes': expected a mapping, got a sequence" },
                { "routes:\n  r: FROM /* INTO $upstream\n  r: FROM /* INTO $upstream\n",
                  "test.yaml:10:6: key 'routes.r': duplicate route name" },
                { "routes:\n  \"a\\tb\": FROM /* INTO $upstream\n", "test.yaml:9:3: key 'routes': invalid route name 'a?b'" },
                { "routes: {}\nroutes: {}\n", "test.yaml:9:1: key 'routes': duplicate (first set at line 8)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                _cleanup_free_ char *yaml = NULL, *e = NULL;
                assert_true(asprintf(&yaml, "%s%s", MINIMAL, bad[i].yaml) > 0);
                int r = parse_str(yaml, &c, &e, NULL);
                if (r != -EINVAL || !e || strcmp(e, bad[i].error) != 0)
                        fail_msg("%s: got %d '%s', want '%s'", bad[i].yaml, r, e ?: "(null)", bad[i].error);
                assert_null(c);
        }
}

static void test_enums(void **state) {
        assert_string_equal(overflow_policy_to_string(OVERFLOW_DROP_OLDEST), "drop_oldest");
        assert_string_equal(overflow_policy_to_string(OVERFLOW_REJECT_NEW), "reject_new");
        assert_null(overflow_policy_to_string(_OVERFLOW_POLICY_MAX));
        assert_null(overflow_policy_to_string(_OVERFLOW_POLICY_INVALID));
        assert_int_equal(overflow_policy_from_string("reject_new"), OVERFLOW_REJECT_NEW);
        assert_int_equal(overflow_policy_from_string("Reject_New"), _OVERFLOW_POLICY_INVALID);
        assert_int_equal(overflow_policy_from_string(NULL), _OVERFLOW_POLICY_INVALID);
        assert_string_equal(sync_policy_to_string(SYNC_ALWAYS), "always");
        assert_null(sync_policy_to_string(_SYNC_POLICY_MAX));
        assert_int_equal(sync_policy_from_string("periodic"), SYNC_PERIODIC);
        assert_int_equal(sync_policy_from_string(""), _SYNC_POLICY_INVALID);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_full),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_values),
                cmocka_unit_test(test_required),
                cmocka_unit_test(test_unknown_keys),
                cmocka_unit_test(test_load),
                cmocka_unit_test(test_example),
                cmocka_unit_test(test_routes),
                cmocka_unit_test(test_enums),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
