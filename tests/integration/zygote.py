"""A process that has imported ``sentsim serve``'s heavy modules and forks a server per request.

Importing torch and transformers is ~7 of the ~9 s a ``sentsim serve`` start costs on a 2-core
machine, and the integration tests start ~25 servers. This process pays the import once per
pytest worker (the way Android's zygote or a preforking server does): it reads one JSON request
a line on stdin (``{"argv": [...], "env": {...}, "cwd": "..."}``), forks, and the child runs the
``sentsim`` command line exactly as the console script would, with that environment. It answers
the server's pid on stdout.

The server is forked twice (the first child exits at once and is reaped here), so its parent
becomes the nearest subreaper: the pytest worker, which marks itself one
(``PR_SET_CHILD_SUBREAPER``) and can therefore wait for it and read its exit status like a
``Popen``'s. No torch operation runs before a fork (the model loads in the server), so no thread
pool is copied half-started. Variables read at import time are this process's, not the
request's: the zygote runs with the tests' environment and ``HF_HUB_OFFLINE=1``.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import traceback


def _preload() -> None:
    """What ``sentsim serve`` imports, without running a torch op or reading the settings."""
    import torch  # noqa: F401
    import transformers  # noqa: F401
    import uvicorn  # noqa: F401
    from transformers import AutoModel, AutoTokenizer, BertModel  # noqa: F401

    import app.cli  # noqa: F401
    import app.main  # noqa: F401
    import app.services.container  # noqa: F401


def _run_server(request: dict[str, object]) -> None:
    """In the grandchild: become ``sentsim <argv>`` and never return."""
    code = 1
    try:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)
        os.dup2(devnull, 1)  # as Popen(stdout=DEVNULL); stderr stays the tests'
        os.close(devnull)
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGPIPE):
            signal.signal(signum, signal.SIG_DFL)
        os.chdir(str(request["cwd"]))
        env = request["env"]
        assert isinstance(env, dict)
        os.environ.clear()
        os.environ.update({str(k): str(v) for k, v in env.items()})
        argv = request["argv"]
        assert isinstance(argv, list)
        sys.argv = ["sentsim", *map(str, argv)]
        from app.cli import main

        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _fork_server(request: dict[str, object]) -> int:
    """Fork the server twice (see the module's doc); its pid."""
    read_end, write_end = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(read_end)
        grandchild = os.fork()
        if grandchild == 0:
            os.close(write_end)
            _run_server(request)
        os.write(write_end, f"{grandchild}\n".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as answer:
        pid = int(answer.readline())
    os.waitpid(child, 0)  # the server is now the subreaper's child
    return pid


def main() -> None:
    """Serve fork requests until stdin closes (the pytest worker ended)."""
    _preload()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    for line in sys.stdin:
        sys.stdout.write(f"{_fork_server(json.loads(line))}\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
