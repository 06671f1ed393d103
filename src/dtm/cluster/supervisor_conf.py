"""The supervisord configuration of a local cluster, rendered from its components.

Rule: the rendered text depends only on the run directory, the interpreter and the components,
so rendering twice gives the same bytes and an unchanged program is never restarted.
"""

from __future__ import annotations

import shlex

from dtm.cluster.layout import Component, RunDir

# Seconds a component gets to stop after SIGTERM before supervisord sends SIGKILL.
STOP_WAIT_SECS = 10
# Attempts to start a component that dies before it has run startsecs.
START_RETRIES = 5


def _escape(value: str) -> str:
    """Supervisord expands ``%(name)s`` in values; a literal percent sign is doubled."""
    return value.replace("%", "%%")


def _command(argv: list[str]) -> str:
    return _escape(" ".join(shlex.quote(a) for a in argv))


def render(run: RunDir, python: str, components: list[Component]) -> str:
    """The full supervisord.conf text for ``components`` living in ``run``."""
    lines = [
        "; Written by `dtm cluster up`; rewritten on every `up`, do not edit.",
        "[unix_http_server]",
        f"file={_escape(str(run.socket))}",
        "chmod=0700",
        "",
        "[supervisord]",
        f"logfile={_escape(str(run.supervisor_log))}",
        "logfile_maxbytes=5MB",
        "logfile_backups=2",
        f"pidfile={_escape(str(run.pidfile))}",
        f"directory={_escape(str(run.root))}",
        f"childlogdir={_escape(str(run.logs))}",
        "nodaemon=false",
        "identifier=dtm",
        "umask=077",
        "",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
        "",
        "[supervisorctl]",
        f"serverurl=unix://{_escape(str(run.socket))}",
        "",
    ]
    for comp in components:
        log = _escape(str(run.log_of(comp.name)))
        lines += [
            f"[program:{comp.name}]",
            f"command={_command(comp.argv(python, run.config))}",
            f"directory={_escape(str(run.root))}",
            f"priority={comp.priority}",
            "autostart=true",
            "autorestart=true",
            "startsecs=1",
            f"startretries={START_RETRIES}",
            "stopsignal=TERM",
            f"stopwaitsecs={STOP_WAIT_SECS}",
            "stopasgroup=true",
            "killasgroup=true",
            "redirect_stderr=true",
            f"stdout_logfile={log}",
            "stdout_logfile_maxbytes=20MB",
            "stdout_logfile_backups=2",
            'environment=DTM_DIE_WITH_PARENT="1",PYTHONUNBUFFERED="1"',
            "",
        ]
    return "\n".join(lines)
