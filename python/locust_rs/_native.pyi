"""Type stubs for the Rust core, locust_rs._native (src/lib.rs registers these names)."""

__version__: str
USER_AGENT: str

def configure(worker_threads: int | None = None) -> int:
    """Sets the tokio worker-thread count for runtimes built from now on; returns the count in force."""

def runtime_started() -> bool:
    """True once this process has built its runtime (False again in a fresh fork child)."""

def eventfd() -> int:
    """The eventfd the gevent watcher listens on (starts the runtime if needed)."""

def drain(max: int = 512) -> list[tuple[int, NativeResponse | NativeError | bytes | None]]:
    """Takes up to ``max`` finished jobs as (ticket id, value)."""

def _submit_panicking_task() -> Ticket:
    """For tests: a task that panics; its waiter receives NativeError(kind="internal")."""

class Ticket:
    @property
    def id(self) -> int: ...
    def cancel(self) -> None:
        """Aborts the job; a late completion is dropped."""

class ConnectionPool:
    def __init__(self, concurrency: int = 10) -> None: ...
    @property
    def concurrency(self) -> int: ...
    def idle_connections(self) -> int: ...
    def in_flight(self) -> int: ...
    def close(self) -> None: ...

class Client:
    def __init__(
        self,
        *,
        network_timeout: float | None = None,
        connection_timeout: float | None = None,
        max_redirects: int = 30,
        max_retries: int = 0,
        insecure: bool = True,
        headers: dict[str, object] | None = None,
        proxy_host: str | None = None,
        proxy_port: int | None = None,
        pool: ConnectionPool | None = None,
        concurrency: int = 10,
        http2_prior_knowledge: bool = False,
    ) -> None: ...
    @property
    def pool(self) -> ConnectionPool: ...
    def request(
        self,
        method: str,
        url: str,
        headers: dict[str, object] | None = None,
        body: bytes | None = None,
        allow_redirects: bool = True,
        stream: bool = False,
        timeout: tuple[float | None, float | None] | None = None,
        insecure: bool | None = None,
        replace_defaults: bool = False,
        max_redirects: int | None = None,
        requests_redirects: bool = False,
    ) -> Ticket: ...
    def cookies(self) -> list[tuple[str, str, str, str]]: ...
    def cookie_header(self, url: str) -> str | None:
        """The Cookie header this client would send to ``url``, if any."""
    def set_cookie(self, set_cookie: str, url: str) -> None: ...
    def clear_cookies(self) -> None: ...

class NativeError:
    @property
    def kind(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def errno(self) -> int | None: ...

class NativeResponse:
    @property
    def status_code(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def response_time(self) -> float: ...
    @property
    def content(self) -> bytes: ...
    @property
    def content_length(self) -> int: ...
    @property
    def http_version(self) -> str: ...
    @property
    def body_error(self) -> NativeError | None: ...
    @property
    def redirected(self) -> bool: ...
    @property
    def is_stream(self) -> bool: ...
    def headers(self) -> list[tuple[str, str]]: ...
    def header(self, name: str) -> str | None: ...
    def history(self) -> list[tuple[int, str, list[tuple[str, str]]]]: ...
    def read_chunk(self) -> Ticket: ...

class DemoServer:
    """The VoiceAssist demo server, listening once the constructor returns (see docs/demo-server.md)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        admin_email: str | None = None,
        admin_password: str | None = None,
        jwt_secret: str | None = None,
        access_token_ttl: int | None = None,
        refresh_token_ttl: int | None = None,
        password_hash_iterations: int | None = None,
        register_per_minute: int | None = None,
        login_attempts_per_minute: int | None = None,
        max_users: int | None = None,
        max_revoked_tokens: int | None = None,
        chat_latency_ms: int | None = None,
        chat_latency_jitter_ms: int | None = None,
        max_conversations_per_user: int | None = None,
        max_conversations: int | None = None,
        max_messages_per_conversation: int | None = None,
        error_rate: float | None = None,
        latency_scale: float | None = None,
        drop_rate: float | None = None,
    ) -> None: ...
    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def url(self) -> str: ...
    @property
    def running(self) -> bool: ...
    def stop(self, timeout: float = 5.0) -> bool: ...
    def __enter__(self) -> DemoServer: ...
    def __exit__(self, *args: object) -> bool: ...
    @staticmethod
    def default_options() -> dict[str, object]: ...
