/* mosquitto.conf for edgehub, generated from the edgehub config */
#pragma once

#include "proto/runtime/config.h"

/*
 * What the broker needs besides the Config: paths edgehub-run resolved and
 * the user mosquitto runs as. mosquitto 2.0.11 drops privileges right after
 * reading its config and only then loads the plugin, binds the listeners and
 * reads the TLS certificate and key (src/mosquitto.c main(), src/net.c
 * net__socket_listen()): every file named here must be readable by that user.
 */
typedef struct BrokerConf {
        const Config *config;
        const char *config_path; /* absolute: handed to the plugin as plugin_opt_config */
        const char *plugin_path; /* absolute */
        const char *user;        /* "mosquitto", or "root" where no such user exists */
        const char *cert_file;   /* NULL: config->tls_cert_file */
        const char *key_file;    /* NULL: config->tls_key_file */
} BrokerConf;

/*
 * The whole file as text. -EINVAL when a value cannot be written in
 * mosquitto's line format (a newline anywhere, a blank in a listener address
 * or socket path, a relative path); *ret_error then says which.
 */
int broker_conf_format(const BrokerConf *b, char **ret, char **ret_error);
