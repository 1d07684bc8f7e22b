/* hubctl modules / deployment: the agent's modules and deployment as text */
#pragma once

#include <jansson.h>
#include <stdio.h>

/*
 * render_modules: the agent's "modules" reply as a table (status, pid,
 * restarts, last exit). render_deployment: the "deployment" reply (what is
 * applied, its version, the last outcome and why it was refused). f NULL:
 * only checks the reply. -EBADMSG when a field is missing (*error says
 * which), -EIO on a write error.
 */
int render_modules(FILE *f, json_t *reply, json_error_t *error);
int render_deployment(FILE *f, json_t *reply, json_error_t *error);
