"""One HTTP/1.1 exchange over a plain socket: the CLI's whole network layer.

Rule: one request per connection (``Connection: close``), one overall deadline for connecting,
sending and reading; every network failure becomes `ErrUnavailable` (or `ErrTimeout`) naming the
address tried, in one line, and `send` says whether the request may have left (`Unanswered`):
before the connection (and its TLS handshake) stands, it surely did not.

It uses only `socket` because `http.client` alone costs more start-up time than the rest of a
one-shot command (it pulls in the e-mail parser and ssl). An ``https://`` handler URL wraps the
socket in TLS (``ssl`` is imported only then), trusting ``ca_file`` if given, else the system's.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

from dtm.errors import ErrSyntaxInvalidArgs, ErrTimeout, ErrUnavailable

MAX_ANSWER_BYTES = 64 * 1024 * 1024
MAX_HEAD_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class BaseUrl:
    """Where the request handler listens: ``http[s]://host[:port][/path]``."""

    host: str
    port: int
    path: str  # "" or "/prefix" without a trailing slash
    tls: bool = False
    ca_file: str = ""  # the CA an https handler's certificate must chain to ("" = the system's)

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}{self.path}"


def parse_url(text: str, source: str = "--url") -> BaseUrl:
    """Parse a handler URL: ``http://`` or ``https://``."""
    raw = text.strip()
    scheme, sep, rest = raw.partition("://")
    if not sep:
        raise ErrSyntaxInvalidArgs(f"{source}: {text!r} is not a URL like http://127.0.0.1:7400")
    if scheme.lower() not in ("http", "https"):
        raise ErrSyntaxInvalidArgs(f"{source}: only http:// and https:// URLs, not {text!r}")
    tls = scheme.lower() == "https"
    authority, slash, path = rest.partition("/")
    path = ("/" + path).rstrip("/") if slash else ""
    if authority.startswith("["):
        host, close, after = authority[1:].partition("]")
        if not close or (after and not after.startswith(":")):
            raise ErrSyntaxInvalidArgs(f"{source}: bad address in {text!r}")
        port_text = after[1:]
    else:
        host, _, port_text = authority.partition(":")
    if not host or any(c in host for c in "@?#, "):
        raise ErrSyntaxInvalidArgs(f"{source}: no usable host in {text!r}")
    port = 443 if tls else 80
    if port_text:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise ErrSyntaxInvalidArgs(f"{source}: bad port in {text!r}")
        port = int(port_text)
    if any(c in path for c in "?# "):
        raise ErrSyntaxInvalidArgs(f"{source}: the URL may not have a query or spaces: {text!r}")
    return BaseUrl(host.lower(), port, path, tls)


def parse_urls(text: str, source: str = "--url") -> tuple[BaseUrl, ...]:
    """Parse one handler URL or several, comma-separated; each is checked, none may repeat."""
    return check_urls([part for part in text.split(",")], source)


def check_urls(texts: list[str], source: str) -> tuple[BaseUrl, ...]:
    """Parse a list of handler URLs (at least one; no empty one, no repeat)."""
    urls: list[BaseUrl] = []
    for part in texts:
        if not part.strip():
            raise ErrSyntaxInvalidArgs(f"{source}: an empty URL in the list {','.join(texts)!r}")
        url = parse_url(part, source)
        if url in urls:
            raise ErrSyntaxInvalidArgs(f"{source}: {str(url)!r} is listed twice")
        urls.append(url)
    if not urls:
        raise ErrSyntaxInvalidArgs(f"{source}: no URL given")
    return tuple(urls)


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes


@dataclass(frozen=True, slots=True)
class Unanswered:
    """No answer came: ``error`` says why; ``sent``: the request's bytes may have left."""

    error: ErrUnavailable
    sent: bool


def _reason(exc: OSError) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "cannot resolve the host name"
    reason = getattr(exc, "reason", None)  # an ssl.SSLError: e.g. CERTIFICATE_VERIFY_FAILED
    if isinstance(reason, str) and reason:
        return f"TLS: {reason.lower().replace('_', ' ')}"
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def exchange(
    base: BaseUrl,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
) -> Answer:
    """Send one request to ``base`` + ``path`` and read the whole answer."""
    got = send(base, method, path, body=body, headers=headers, timeout=timeout)
    if isinstance(got, Unanswered):
        raise got.error
    return got


def send(
    base: BaseUrl,
    method: str,
    path: str,
    *,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
    timeout: float = 15.0,
    connect_timeout: float | None = None,
) -> Answer | Unanswered:
    """Like `exchange`, but a missing answer is returned, saying whether the request left;
    ``connect_timeout`` (at most ``timeout``) bounds the connection and its TLS handshake."""
    where = f"the request handler at {base}"
    deadline = time.monotonic() + timeout
    lines = [
        f"{method} {base.path}{path} HTTP/1.1",
        f"Host: {base.host}:{base.port}",
        "User-Agent: todo",
        "Accept: application/json",
        "Connection: close",
    ]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    request = ("\r\n".join(lines) + "\r\n\r\n").encode() + (body or b"")
    wait = timeout if connect_timeout is None else min(timeout, connect_timeout)
    try:
        # An ASCII host as bytes skips the IDNA codec (a few ms of start-up).
        host = base.host.encode() if base.host.isascii() else base.host
        sock = socket.create_connection((host, base.port), wait)  # type: ignore[arg-type]
        if base.tls:
            sock = _wrap_tls(sock, base)
    except TimeoutError:
        late = ErrTimeout(f"cannot reach {where} (no connection within {wait:g} s)")
        return Unanswered(late, sent=False)
    except OSError as exc:
        return Unanswered(ErrUnavailable(f"cannot reach {where} ({_reason(exc)})"), sent=False)
    chunks: list[bytes] = []
    try:
        with sock:
            sock.sendall(request)
            size = 0
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                sock.settimeout(left)
                chunk = sock.recv(256 * 1024)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
                if size > MAX_ANSWER_BYTES:
                    raise ErrUnavailable(f"{where} sent an answer over {MAX_ANSWER_BYTES} bytes")
    except TimeoutError:
        return Unanswered(ErrTimeout(f"{where} did not answer within {timeout:g} s"), sent=True)
    except OSError as exc:
        lost = ErrUnavailable(f"lost the connection to {where} ({_reason(exc)})")
        return Unanswered(lost, sent=True)
    try:
        return parse_answer(b"".join(chunks), where)
    except ErrUnavailable as exc:  # it answered, but not in HTTP: as if it had not
        return Unanswered(exc, sent=True)


def _wrap_tls(sock: socket.socket, base: BaseUrl) -> socket.socket:
    """The TLS handshake on ``sock``; a certificate problem is an OSError (ssl.SSLError)."""
    import ssl

    try:
        ctx = ssl.create_default_context(cafile=base.ca_file or None)
    except OSError as exc:
        sock.close()
        raise ErrSyntaxInvalidArgs(f"cannot read the CA file {base.ca_file!r}: {exc}") from None
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        return ctx.wrap_socket(sock, server_hostname=base.host)
    except BaseException:
        sock.close()
        raise


def parse_answer(data: bytes, where: str = "the server") -> Answer:
    """Split a complete HTTP/1.1 answer (read to the end of the connection) into its parts."""
    head, sep, rest = data.partition(b"\r\n\r\n")
    if not sep or len(head) > MAX_HEAD_BYTES:
        raise ErrUnavailable(f"{where} sent no complete HTTP answer")
    try:
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        version, code, *_ = status_line.split(" ", 2)
        if not version.startswith("HTTP/1.") or len(code) != 3 or not code.isdigit():
            raise ValueError(status_line)
        headers: dict[str, str] = {}
        for line in header_lines:
            name, colon, value = line.partition(":")
            if not colon:
                raise ValueError(line)
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = _dechunk(rest)
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length < 0 or len(rest) < length:
                raise ValueError("the body is shorter than its Content-Length")
            body = rest[:length]
        else:
            body = rest
    except ValueError:
        raise ErrUnavailable(f"{where} sent a malformed HTTP answer") from None
    return Answer(int(code), headers, body)


def _dechunk(data: bytes) -> bytes:
    out: list[bytes] = []
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";", 1)[0].strip() or b"x", 16)
        start = end + 2
        if size == 0:
            return b"".join(out)
        if len(data) < start + size:
            raise ValueError("truncated chunk")
        out.append(data[start : start + size])
        pos = start + size + 2
