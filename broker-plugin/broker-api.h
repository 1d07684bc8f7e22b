/* mosquitto's plugin API (2.0.11, version 5), included in the order it needs */
#pragma once

/*
 * mosquitto_plugin.h uses mosquitto_plugin_id_t from mosquitto_broker.h and
 * the MOSQ_ERR_* codes live in mosquitto.h. The broker's symbols resolve
 * when it loads the plugin: the .so is not linked against anything of it.
 */
#include <mosquitto.h>
#include <mosquitto_broker.h>
#include <mosquitto_plugin.h>
