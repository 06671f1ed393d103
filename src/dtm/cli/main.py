"""`todo`: the command-line client of the task list.

    todo add Buy groceries        one-shot commands (see `todo help`)
    todo                          the interactive shell (also `todo shell`)

Settings, the session file and the console are set up here and only here. The one-shot path
imports only the standard library, msgspec and dtm's own small modules; the shell's line editor
is loaded when a shell opens on a terminal.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from dtm.cli.client import TaskClient
from dtm.cli.commands import Context, report, run
from dtm.cli.grammar import Invocation, Shell, Words, parse
from dtm.cli.parsed import LOCAL
from dtm.cli.render import Console
from dtm.cli.settings import read_config, read_token, resolve, token_source
from dtm.cli.state import SessionStore, config_file, state_dir
from dtm.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERRUPTED,
    DtmError,
    ErrInternal,
    ErrSyntaxInvalidArgs,
)
from dtm.wire import SessionToken

DEBUG_ENV = "DTM_DEBUG"  # set it to see a traceback instead of ErrInternal on a bug


def _prepare_streams() -> None:
    """Never die on an unencodable character or an undecodable input byte."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="backslashreplace")
    reconfigure = getattr(sys.stdin, "reconfigure", None)
    if reconfigure is not None:
        reconfigure(errors="surrogateescape")


def _run(inv: Invocation, console: Console, env: Mapping[str, str]) -> int:
    cmd = inv.command
    if isinstance(cmd, LOCAL):  # no request handler needed
        code, _ = run(cmd, Context(None, console))
        return code
    try:
        cfg_path = config_file(env)
        cfg = read_config(cfg_path)
        settings = resolve(inv.options.url, env, cfg)
        source = token_source(inv.options.token, env, cfg, cfg_path.parent)
        user_token = read_token(source)
    except DtmError as err:
        return report(console, err)
    names = [str(u) for u in settings.urls]
    store = SessionStore(state_dir(env), names, console.warn)
    last = store.last_handler()
    client = TaskClient(
        settings.urls,
        timeout=settings.timeout,
        token=store.load(),
        on_token=store.save,
        user_token=user_token,
        user_token_source=source.source if source is not None else "",
        node=inv.options.node,
        start=settings.urls[names.index(last)] if last is not None else None,
        on_answered=lambda url: store.answered(str(url)),
        on_note=console.warn,
    )
    where = ", ".join(names)

    def forget() -> str:
        client.token = SessionToken()
        try:
            forgot = store.forget()
        except OSError as exc:
            raise ErrSyntaxInvalidArgs(
                f"cannot change the session file {store.path}: {exc.strerror or exc}"
            ) from None
        if forgot:
            return f"Forgot the session token for {where} (in {store.path})"
        return f"No session token was kept for {where}"

    ctx = Context(client, console, pager=inv.options.pager, env=env, forget_session=forget)
    if isinstance(cmd, Shell):
        from dtm.cli.shell import run_shell

        return run_shell(ctx, sys.stdin)
    code, _ = run(cmd, ctx)
    return code


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else list(argv)
    env = os.environ
    _prepare_streams()
    inv = parse(Words.from_argv(args))
    console = Console.detect(sys.stdout, sys.stderr, env, inv.options.json)
    try:
        return _run(inv, console, env)
    except KeyboardInterrupt:
        console.err.write("\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (`todo list | head -1`): say nothing more.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except Exception as exc:
        if env.get(DEBUG_ENV):
            raise
        return report(console, ErrInternal(f"unexpected {type(exc).__name__}: {exc}"))


if __name__ == "__main__":
    sys.exit(main())
