//! A small WebDriver (W3C) client for Debian's `chromium`, driven through Debian's `chromedriver`:
//! the console's browser tests load pages, click, type, run scripts, read the browser console and
//! the URLs a page requested, and take screenshots.
//!
//! WebDriver is JSON over HTTP/1.1; the driver listens on loopback, so a `std` [`TcpStream`] with
//! `Content-Length` and `Connection: close` is the whole transport: no WebDriver crate, no HTTP
//! client, and never a browser download. [`Browser::start`] starts `chromedriver --port=<free>`,
//! waits until `/status` says ready, and opens a session with headless chromium at 1280×800 and
//! the `browser` and `performance` logs on. Dropping the [`Browser`] ends the session (which quits
//! chromium), kills the browser process if it is still there, and kills chromedriver.
//!
//! Logs: chromedriver (checked with 156) serves the legacy log endpoint as
//! `POST /session/{id}/se/log` with `{"type": "browser"|"performance"}`; each read drains what was
//! collected since the previous read. [`Browser::console_log`] reads the browser log (console
//! messages, CSP violations, failed loads); [`Browser::requested_urls`] reads the performance log's
//! `Network.requestWillBeSent` events, falling back to the page's
//! `performance.getEntriesByType` when the driver has no log endpoint.

use crate::free_port;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where Debian's `chromium` package puts the browser.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Where Debian's `chromium-driver` package puts the driver.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The W3C key under which an element reference travels.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long chromedriver may take to answer `/status` with `ready: true`.
const DRIVER_READY: Duration = Duration::from_secs(20);

/// How long one WebDriver command may take (a page load is bounded lower, see [`PAGE_LOAD`]).
const COMMAND_TIMEOUT: Duration = Duration::from_secs(120);

/// The session's page-load timeout: a console page that takes longer is a failure, not a hang.
const PAGE_LOAD: Duration = Duration::from_secs(30);

/// The arguments every session gives chromium: headless at a fixed size (screenshots compare),
/// no sandbox (tests run as root in containers), and none of the browser's own background
/// traffic (updates, sync, first-run pages), so the only requests are the page's.
pub const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--window-size=1280,800",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-default-apps",
    "--disable-sync",
    "--disable-extensions",
    "--password-store=basic",
];

/// The Enter key, for [`Element::send_keys`] (a WebDriver key code point).
pub const KEY_ENTER: &str = "\u{E007}";

/// Why a browser command failed; every message says which command.
#[derive(Debug, thiserror::Error)]
pub enum WebDriverError {
    /// The browser or the driver is not installed.
    #[error(
        "{0} not found: install the Debian packages `chromium` and `chromium-driver` \
         (scripts/install-test-deps.sh does)"
    )]
    Missing(PathBuf),
    /// The driver's temp dir or log file could not be created, or the driver could not start.
    #[error("cannot start chromedriver: {0}")]
    Spawn(#[source] std::io::Error),
    /// The driver did not become ready, or exited early.
    #[error("chromedriver not ready: {detail}; its log:\n{log}")]
    NotReady {
        /// What happened.
        detail: String,
        /// The tail of chromedriver's output.
        log: String,
    },
    /// The connection to the driver failed.
    #[error("{method} {path}: {source}")]
    Io {
        /// The HTTP method.
        method: String,
        /// The WebDriver path.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The driver answered with a WebDriver error (`no such element`, `javascript error`, …).
    #[error("{method} {path}: HTTP {status}: {error}: {message}")]
    Command {
        /// The HTTP method.
        method: String,
        /// The WebDriver path.
        path: String,
        /// The HTTP status.
        status: u16,
        /// The WebDriver error code, e.g. `no such element`.
        error: String,
        /// The driver's message (first line of it).
        message: String,
    },
    /// The answer was not HTTP or not the JSON WebDriver promises.
    #[error("{method} {path}: malformed answer: {detail}")]
    Protocol {
        /// The HTTP method.
        method: String,
        /// The WebDriver path.
        path: String,
        /// What was wrong.
        detail: String,
    },
    /// [`Browser::wait_for`] ran out of time.
    #[error("timed out after {timeout:?} waiting for {what} (last: {last})")]
    Timeout {
        /// What was waited for.
        what: String,
        /// How long.
        timeout: Duration,
        /// The last error or "not yet".
        last: String,
    },
    /// Writing a screenshot failed.
    #[error("cannot write {path}: {source}")]
    Write {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl WebDriverError {
    /// The WebDriver error code when the driver answered with one (`no such element`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            WebDriverError::Command { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// One entry of the browser's console log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// `SEVERE`, `WARNING`, `INFO`, `DEBUG`.
    pub level: String,
    /// Where it came from: `console-api`, `security` (CSP), `network`, `javascript`, …
    pub source: String,
    /// The text (for network entries it starts with the URL).
    pub message: String,
    /// Unix ms.
    pub timestamp: i64,
}

impl LogEntry {
    /// Whether the browser counts it as an error (`SEVERE`).
    pub fn is_severe(&self) -> bool {
        self.level == "SEVERE"
    }
}

/// A running chromedriver with one headless chromium session.
#[derive(Debug)]
pub struct Browser {
    driver: Option<Child>,
    port: u16,
    session: String,
    browser_pid: Option<u32>,
    dir: tempfile::TempDir,
    /// Set when the driver has no log endpoint; requests are then read from the page.
    no_log_endpoint: std::cell::Cell<bool>,
}

/// An element of the current page; valid until the page changes (then the driver answers
/// `stale element reference`).
#[derive(Debug, Clone)]
pub struct Element<'a> {
    browser: &'a Browser,
    id: String,
}

impl Browser {
    /// Starts chromedriver on a free port and a headless chromium session with
    /// [`CHROMIUM_ARGS`].
    ///
    /// # Errors
    /// [`WebDriverError::Missing`] when Debian's `chromium` or `chromium-driver` is not installed
    /// (a missing browser is a failure, never a skip); the driver not ready; the session refused.
    pub fn start() -> Result<Browser, WebDriverError> {
        Self::start_with(&[])
    }

    /// As [`Browser::start`], with extra chromium arguments (e.g. `--lang=zh-CN`).
    ///
    /// # Errors
    /// As [`Browser::start`].
    pub fn start_with(extra_args: &[&str]) -> Result<Browser, WebDriverError> {
        for bin in [CHROMIUM, CHROMEDRIVER] {
            if !Path::new(bin).exists() {
                return Err(WebDriverError::Missing(PathBuf::from(bin)));
            }
        }
        // A free port can be taken between choosing and binding it: try a few.
        let mut last = None;
        for _ in 0..3 {
            match Self::start_driver() {
                Ok(b) => return b.open_session(extra_args),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| WebDriverError::NotReady {
            detail: "no attempt".into(),
            log: String::new(),
        }))
    }

    fn start_driver() -> Result<Browser, WebDriverError> {
        let dir = tempfile::tempdir().map_err(WebDriverError::Spawn)?;
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("chromedriver.log"))
            .map_err(WebDriverError::Spawn)?;
        let err = log.try_clone().map_err(WebDriverError::Spawn)?;
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            .spawn()
            .map_err(WebDriverError::Spawn)?;
        let mut b = Browser {
            driver: Some(child),
            port,
            session: String::new(),
            browser_pid: None,
            dir,
            no_log_endpoint: std::cell::Cell::new(false),
        };
        let deadline = Instant::now() + DRIVER_READY;
        loop {
            if let Ok(v) = b.raw("GET", "/status", None)
                && v["ready"] == true
            {
                return Ok(b);
            }
            if let Some(c) = b.driver.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                return Err(WebDriverError::NotReady {
                    detail: format!("exited with {status}"),
                    log: b.driver_log_tail(),
                });
            }
            if Instant::now() > deadline {
                return Err(WebDriverError::NotReady {
                    detail: format!("no ready /status within {DRIVER_READY:?}"),
                    log: b.driver_log_tail(),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn open_session(mut self, extra_args: &[&str]) -> Result<Browser, WebDriverError> {
        let mut args: Vec<&str> = CHROMIUM_ARGS.to_vec();
        args.extend_from_slice(extra_args);
        let caps = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
                    "goog:loggingPrefs": {"browser": "ALL", "performance": "ALL"},
                    "timeouts": {
                        "pageLoad": PAGE_LOAD.as_millis() as u64,
                        "script": 30_000,
                        "implicit": 0
                    }
                }
            }
        });
        let v = self.raw("POST", "/session", Some(&caps))?;
        self.session = v["sessionId"]
            .as_str()
            .ok_or_else(|| WebDriverError::Protocol {
                method: "POST".into(),
                path: "/session".into(),
                detail: format!("no sessionId in {v}"),
            })?
            .to_string();
        self.browser_pid = v["capabilities"]["goog:processID"]
            .as_u64()
            .and_then(|p| u32::try_from(p).ok());
        Ok(self)
    }

    /// The last lines of chromedriver's own output, for error messages.
    pub fn driver_log_tail(&self) -> String {
        let text =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// The WebDriver session id.
    pub fn session_id(&self) -> &str {
        &self.session
    }

    /// One command of this session: `path` is relative to `/session/{id}` (e.g. `/url`).
    ///
    /// # Errors
    /// Connection failures, WebDriver errors, malformed answers.
    pub fn command(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, WebDriverError> {
        self.raw(method, &format!("/session/{}{path}", self.session), body)
    }

    /// One HTTP exchange with the driver; the answer's `value`.
    fn raw(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, WebDriverError> {
        let io = |source| WebDriverError::Io {
            method: method.to_string(),
            path: path.to_string(),
            source,
        };
        let proto = |detail: String| WebDriverError::Protocol {
            method: method.to_string(),
            path: path.to_string(),
            detail,
        };
        let addr = SocketAddr::from(([127, 0, 0, 1], self.port));
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).map_err(io)?;
        s.set_read_timeout(Some(COMMAND_TIMEOUT)).map_err(io)?;
        s.set_write_timeout(Some(Duration::from_secs(10)))
            .map_err(io)?;
        // POST needs a body, even an empty object (chromedriver refuses an empty POST).
        let payload = match (method, body) {
            (_, Some(b)) => b.to_string(),
            ("POST", None) => "{}".to_string(),
            _ => String::new(),
        };
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nAccept: application/json\r\n",
            self.port
        );
        if method == "POST" || body.is_some() {
            req.push_str(&format!(
                "Content-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\n",
                payload.len()
            ));
        }
        req.push_str("\r\n");
        req.push_str(&payload);
        s.write_all(req.as_bytes()).map_err(io)?;
        // Chromedriver keeps the connection open despite `Connection: close`: read exactly one
        // answer (headers, then Content-Length bytes or chunks), never to the end of the stream.
        let mut buf = Vec::new();
        let mut chunk = [0u8; 16 * 1024];
        let (status, body) = loop {
            match parse_response(&buf) {
                Ok(Some(answer)) => break answer,
                Ok(None) => {}
                Err(detail) => return Err(proto(detail)),
            }
            let n = s.read(&mut chunk).map_err(io)?;
            if n == 0 {
                // The driver closed: what we have is all there is (a body without a length).
                match parse_response_at_eof(&buf) {
                    Ok(answer) => break answer,
                    Err(detail) => return Err(proto(detail)),
                }
            }
            buf.extend_from_slice(&chunk[..n]);
        };
        let v: Value = serde_json::from_slice(&body).map_err(|e| {
            proto(format!(
                "HTTP {status}, not JSON ({e}): {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ))
        })?;
        let value = v.get("value").cloned().unwrap_or(Value::Null);
        if status != 200 {
            let message = value["message"].as_str().unwrap_or("");
            return Err(WebDriverError::Command {
                method: method.to_string(),
                path: path.to_string(),
                status,
                error: value["error"]
                    .as_str()
                    .unwrap_or("unknown error")
                    .to_string(),
                // Chromedriver appends a long native stack after the first line.
                message: message.lines().next().unwrap_or("").to_string(),
            });
        }
        Ok(value)
    }

    /// Navigates to `url` and waits for the page load.
    ///
    /// # Errors
    /// As [`Browser::command`] (a page load over 30 s is a `timeout` error).
    pub fn goto(&self, url: &str) -> Result<(), WebDriverError> {
        self.command("POST", "/url", Some(&json!({ "url": url })))
            .map(drop)
    }

    /// The current page's URL.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn current_url(&self) -> Result<String, WebDriverError> {
        Ok(self
            .command("GET", "/url", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The current page's title.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn title(&self) -> Result<String, WebDriverError> {
        Ok(self
            .command("GET", "/title", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// The current DOM serialized as HTML.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn page_source(&self) -> Result<String, WebDriverError> {
        Ok(self
            .command("GET", "/source", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// Reloads the page.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn refresh(&self) -> Result<(), WebDriverError> {
        self.command("POST", "/refresh", None).map(drop)
    }

    /// The first element matching a CSS selector.
    ///
    /// # Errors
    /// `no such element` (see [`WebDriverError::code`]) when none matches.
    pub fn find(&self, css: &str) -> Result<Element<'_>, WebDriverError> {
        let v = self.command(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        self.element(&v, "/element")
    }

    /// Every element matching a CSS selector (possibly none).
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'_>>, WebDriverError> {
        let v = self.command(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        v.as_array()
            .map(|a| a.iter().map(|e| self.element(e, "/elements")).collect())
            .unwrap_or_else(|| Ok(Vec::new()))
    }

    /// The first element matching a CSS selector, or `None`.
    ///
    /// # Errors
    /// As [`Browser::command`], except `no such element`.
    pub fn try_find(&self, css: &str) -> Result<Option<Element<'_>>, WebDriverError> {
        match self.find(css) {
            Ok(e) => Ok(Some(e)),
            Err(e) if e.code() == Some("no such element") => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn element(&self, v: &Value, path: &str) -> Result<Element<'_>, WebDriverError> {
        let id = v[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| WebDriverError::Protocol {
                method: "POST".into(),
                path: path.into(),
                detail: format!("no element reference in {v}"),
            })?;
        Ok(Element {
            browser: self,
            id: id.to_string(),
        })
    }

    /// Runs `script` (a function body: use `return`, arguments in `arguments[i]`) in the page and
    /// returns its result as JSON.
    ///
    /// # Errors
    /// `javascript error` when the script throws; as [`Browser::command`].
    pub fn execute(&self, script: &str, args: &[Value]) -> Result<Value, WebDriverError> {
        self.command(
            "POST",
            "/execute/sync",
            Some(&json!({"script": script, "args": args})),
        )
    }

    /// A PNG screenshot of the viewport.
    ///
    /// # Errors
    /// As [`Browser::command`]; a malformed base64 answer is a protocol error.
    pub fn screenshot(&self) -> Result<Vec<u8>, WebDriverError> {
        let v = self.command("GET", "/screenshot", None)?;
        let text = v.as_str().unwrap_or("");
        base64_decode(text).ok_or_else(|| WebDriverError::Protocol {
            method: "GET".into(),
            path: "/screenshot".into(),
            detail: "not base64".into(),
        })
    }

    /// Writes [`Browser::screenshot`] to `path` (its folder is created).
    ///
    /// # Errors
    /// As [`Browser::screenshot`]; the file cannot be written.
    pub fn save_screenshot(&self, path: &Path) -> Result<(), WebDriverError> {
        let png = self.screenshot()?;
        let write = |source| WebDriverError::Write {
            path: path.to_path_buf(),
            source,
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(write)?;
        }
        std::fs::write(path, png).map_err(write)
    }

    /// Reads (and drains) one of the driver's logs: `browser` or `performance`.
    ///
    /// # Errors
    /// As [`Browser::command`]; `unknown command` when the driver has no log endpoint.
    pub fn log(&self, kind: &str) -> Result<Vec<Value>, WebDriverError> {
        let v = self.command("POST", "/se/log", Some(&json!({ "type": kind })))?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// The browser console entries since the previous call (console messages, uncaught
    /// exceptions, CSP violations, failed loads).
    ///
    /// # Errors
    /// As [`Browser::log`].
    pub fn console_log(&self) -> Result<Vec<LogEntry>, WebDriverError> {
        Ok(self
            .log("browser")?
            .iter()
            .map(|e| LogEntry {
                level: e["level"].as_str().unwrap_or("").to_string(),
                source: e["source"].as_str().unwrap_or("").to_string(),
                message: e["message"].as_str().unwrap_or("").to_string(),
                timestamp: e["timestamp"].as_i64().unwrap_or(0),
            })
            .collect())
    }

    /// The URLs the browser requested since the previous call (documents, scripts, styles,
    /// images, fetches, redirects followed), from the performance log's
    /// `Network.requestWillBeSent`. Without a log endpoint: the current page's navigation and
    /// resource timing entries (`performance.getEntriesByType`), which see the current page only.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn requested_urls(&self) -> Result<Vec<String>, WebDriverError> {
        if !self.no_log_endpoint.get() {
            match self.log("performance") {
                Ok(entries) => return Ok(urls_from_performance_log(&entries)),
                Err(e) if e.code() == Some("unknown command") => {
                    self.no_log_endpoint.set(true);
                }
                Err(e) => return Err(e),
            }
        }
        let v = self.execute(
            "return performance.getEntriesByType('navigation')\
             .concat(performance.getEntriesByType('resource')).map(e => e.name);",
            &[],
        )?;
        Ok(v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|u| u.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Every cookie the browser holds for the current page (WebDriver cookie objects: `name`,
    /// `value`, `httpOnly`, `sameSite`, `expiry`, …).
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn cookies(&self) -> Result<Vec<Value>, WebDriverError> {
        Ok(self
            .command("GET", "/cookie", None)?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// One cookie by name, if the browser holds it for the current page.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn cookie(&self, name: &str) -> Result<Option<Value>, WebDriverError> {
        Ok(self.cookies()?.into_iter().find(|c| c["name"] == name))
    }

    /// Deletes every cookie of the current page's site (signs the browser out).
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn delete_cookies(&self) -> Result<(), WebDriverError> {
        self.command("DELETE", "/cookie", None).map(drop)
    }

    /// The text of the open `alert`/`confirm`/`prompt` dialog.
    ///
    /// # Errors
    /// `no such alert` when none is open; as [`Browser::command`].
    pub fn alert_text(&self) -> Result<String, WebDriverError> {
        Ok(self
            .command("GET", "/alert/text", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// Accepts (OK) the open dialog, e.g. a `data-confirm` question.
    ///
    /// # Errors
    /// `no such alert` when none is open; as [`Browser::command`].
    pub fn accept_alert(&self) -> Result<(), WebDriverError> {
        self.command("POST", "/alert/accept", None).map(drop)
    }

    /// Dismisses (Cancel) the open dialog.
    ///
    /// # Errors
    /// `no such alert` when none is open; as [`Browser::command`].
    pub fn dismiss_alert(&self) -> Result<(), WebDriverError> {
        self.command("POST", "/alert/dismiss", None).map(drop)
    }

    /// Polls `check` every 100 ms until it returns `Ok(Some(_))` or `timeout` passes. Errors of
    /// `check` (a stale element while the page changes, …) count as "not yet".
    ///
    /// # Errors
    /// [`WebDriverError::Timeout`] with the last error.
    pub fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        mut check: impl FnMut(&Browser) -> Result<Option<T>, WebDriverError>,
    ) -> Result<T, WebDriverError> {
        let deadline = Instant::now() + timeout;
        let mut last;
        loop {
            match check(self) {
                Ok(Some(v)) => return Ok(v),
                Ok(None) => last = "not yet".into(),
                Err(e) => last = e.to_string(),
            }
            if Instant::now() >= deadline {
                return Err(WebDriverError::Timeout {
                    what: what.to_string(),
                    timeout,
                    last,
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until an element matches `css`, and returns it.
    ///
    /// # Errors
    /// [`WebDriverError::Timeout`].
    pub fn wait_for_element(
        &self,
        css: &str,
        timeout: Duration,
    ) -> Result<Element<'_>, WebDriverError> {
        let id = self.wait_for(timeout, &format!("an element `{css}`"), |b| {
            Ok(b.try_find(css)?.map(|e| e.id))
        })?;
        Ok(Element { browser: self, id })
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit chromium and remove its profile dir.
        if !self.session.is_empty() {
            let _ = self.raw("DELETE", &format!("/session/{}", self.session), None);
        }
        // If the session could not end (a hung browser), the browser we started is killed by id.
        if let Some(pid) = self.browser_pid
            && Path::new(&format!("/proc/{pid}")).exists()
        {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
        if let Some(mut c) = self.driver.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl<'a> Element<'a> {
    /// The WebDriver element id.
    pub fn id(&self) -> &str {
        &self.id
    }

    fn cmd(&self, method: &str, tail: &str, body: Option<&Value>) -> Result<Value, WebDriverError> {
        self.browser
            .command(method, &format!("/element/{}{tail}", self.id), body)
    }

    /// Clicks it (scrolled into view first by the driver).
    ///
    /// # Errors
    /// `element not interactable`, `element click intercepted`, …; as [`Browser::command`].
    pub fn click(&self) -> Result<(), WebDriverError> {
        self.cmd("POST", "/click", None).map(drop)
    }

    /// Types `text` into it ([`KEY_ENTER`] presses Enter).
    ///
    /// # Errors
    /// As [`Element::click`].
    pub fn send_keys(&self, text: &str) -> Result<(), WebDriverError> {
        self.cmd("POST", "/value", Some(&json!({ "text": text })))
            .map(drop)
    }

    /// Empties an input or textarea.
    ///
    /// # Errors
    /// As [`Element::click`].
    pub fn clear(&self) -> Result<(), WebDriverError> {
        self.cmd("POST", "/clear", None).map(drop)
    }

    /// Its rendered text.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn text(&self) -> Result<String, WebDriverError> {
        Ok(self
            .cmd("GET", "/text", None)?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// An attribute's value, `None` when absent.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn attribute(&self, name: &str) -> Result<Option<String>, WebDriverError> {
        Ok(self
            .cmd("GET", &format!("/attribute/{name}"), None)?
            .as_str()
            .map(str::to_string))
    }

    /// A DOM property (e.g. `value` of an input, `checked`).
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn property(&self, name: &str) -> Result<Value, WebDriverError> {
        self.cmd("GET", &format!("/property/{name}"), None)
    }

    /// Its tag name, lower case.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn tag_name(&self) -> Result<String, WebDriverError> {
        Ok(self
            .cmd("GET", "/name", None)?
            .as_str()
            .unwrap_or("")
            .to_lowercase())
    }

    /// Whether it is displayed.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn is_displayed(&self) -> Result<bool, WebDriverError> {
        Ok(self
            .cmd("GET", "/displayed", None)?
            .as_bool()
            .unwrap_or(false))
    }

    /// The first descendant matching a CSS selector.
    ///
    /// # Errors
    /// `no such element`; as [`Browser::command`].
    pub fn find(&self, css: &str) -> Result<Element<'a>, WebDriverError> {
        let v = self.cmd(
            "POST",
            "/element",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        self.browser.element(&v, "/element/{id}/element")
    }

    /// Every descendant matching a CSS selector.
    ///
    /// # Errors
    /// As [`Browser::command`].
    pub fn find_all(&self, css: &str) -> Result<Vec<Element<'a>>, WebDriverError> {
        let v = self.cmd(
            "POST",
            "/elements",
            Some(&json!({"using": "css selector", "value": css})),
        )?;
        v.as_array()
            .map(|a| {
                a.iter()
                    .map(|e| self.browser.element(e, "/element/{id}/elements"))
                    .collect()
            })
            .unwrap_or_else(|| Ok(Vec::new()))
    }
}

/// The URLs of `Network.requestWillBeSent` events in performance log entries (each entry's
/// `message` is JSON text `{"message": {"method", "params"}}`).
pub fn urls_from_performance_log(entries: &[Value]) -> Vec<String> {
    entries
        .iter()
        .filter_map(|e| serde_json::from_str::<Value>(e["message"].as_str()?).ok())
        .filter(|m| m["message"]["method"] == "Network.requestWillBeSent")
        .filter_map(|m| {
            m["message"]["params"]["request"]["url"]
                .as_str()
                .map(str::to_string)
        })
        .collect()
}

/// The head of an HTTP answer: status, whether chunked, the Content-Length, where the body starts.
type Head = (u16, bool, Option<usize>, usize);

fn parse_head(buf: &[u8]) -> Result<Option<Head>, String> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = String::from_utf8_lossy(&buf[..end]);
    let mut lines = head.lines();
    let status = lines
        .next()
        .filter(|l| l.starts_with("HTTP/"))
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse::<u16>().ok())
        .ok_or_else(|| format!("bad status line in {head:?}"))?;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            let (k, v) = (k.trim(), v.trim());
            if k.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if k.eq_ignore_ascii_case("content-length") {
                length = Some(
                    v.parse::<usize>()
                        .map_err(|_| format!("bad length {v:?}"))?,
                );
            }
        }
    }
    Ok(Some((status, chunked, length, end + 4)))
}

/// One complete HTTP/1.1 answer at the start of `buf` as status and body (de-chunked);
/// `Ok(None)` while more bytes are needed.
fn parse_response(buf: &[u8]) -> Result<Option<(u16, Vec<u8>)>, String> {
    let Some((status, chunked, length, start)) = parse_head(buf)? else {
        return Ok(None);
    };
    let body = &buf[start..];
    if chunked {
        return Ok(dechunk(body)?.map(|b| (status, b)));
    }
    match length {
        Some(n) if n <= body.len() => Ok(Some((status, body[..n].to_vec()))),
        // Without a length the body ends when the peer closes.
        _ => Ok(None),
    }
}

/// The answer in `buf` once the peer closed the connection.
fn parse_response_at_eof(buf: &[u8]) -> Result<(u16, Vec<u8>), String> {
    let (status, chunked, length, start) =
        parse_head(buf)?.ok_or("closed before the end of the headers")?;
    let body = &buf[start..];
    match (chunked, length) {
        (false, None) => Ok((status, body.to_vec())),
        (false, Some(n)) => Err(format!("body cut short: {} of {n} bytes", body.len())),
        (true, _) => Err("closed in the middle of a chunked body".into()),
    }
}

/// De-chunks a chunked body; `Ok(None)` while the last chunk has not arrived.
fn dechunk(mut rest: &[u8]) -> Result<Option<Vec<u8>>, String> {
    let mut out = Vec::new();
    loop {
        let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size_hex = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16)
            .map_err(|_| format!("bad chunk size {size_hex:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(Some(out));
        }
        if rest.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// Standard base64 (with or without padding) to bytes; `None` on a character outside the alphabet.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    fn val(c: u8) -> Option<u32> {
        match c {
            b'A'..=b'Z' => Some(u32::from(c - b'A')),
            b'a'..=b'z' => Some(u32::from(c - b'a') + 26),
            b'0'..=b'9' => Some(u32::from(c - b'0') + 52),
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        }
    }
    let clean: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for chunk in clean.chunks(4) {
        let mut acc = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            acc |= val(c)? << (18 - 6 * i);
        }
        let bytes = acc.to_be_bytes();
        match chunk.len() {
            4 => out.extend_from_slice(&bytes[1..4]),
            3 => out.extend_from_slice(&bytes[1..3]),
            2 => out.push(bytes[1]),
            _ => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn base64_round_trips_known_values() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("iVBORw0KGgo=").unwrap(), b"\x89PNG\r\n\x1a\n");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a$==").is_none());
        assert!(base64_decode("a").is_none());
    }

    #[test]
    fn responses_parse_with_length_and_chunked() {
        let (s, b) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloEXTRA")
            .unwrap()
            .unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"hello"[..]));
        let chunked =
            b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (s, b) = parse_response(chunked).unwrap().unwrap();
        assert_eq!((s, b.as_slice()), (404, &b"abcde"[..]));
        // Every prefix is "not yet", never an error or a wrong answer.
        for cut in 0..chunked.len() - 2 {
            assert_eq!(
                parse_response(&chunked[..cut]).unwrap(),
                None,
                "cut at {cut}"
            );
        }
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert_eq!(parse_response(short).unwrap(), None);
        assert!(parse_response_at_eof(short).is_err());
        let (s, b) = parse_response_at_eof(b"HTTP/1.1 200 OK\r\n\r\nall").unwrap();
        assert_eq!((s, b.as_slice()), (200, &b"all"[..]));
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn performance_log_yields_request_urls_only() {
        let entries = vec![
            json!({"message": json!({"message": {"method": "Network.requestWillBeSent",
                "params": {"request": {"url": "http://127.0.0.1:1/a"}}}}).to_string()}),
            json!({"message": json!({"message": {"method": "Network.responseReceived",
                "params": {"response": {"url": "http://127.0.0.1:1/b"}}}}).to_string()}),
            json!({"message": "not json"}),
        ];
        assert_eq!(
            urls_from_performance_log(&entries),
            vec!["http://127.0.0.1:1/a".to_string()]
        );
    }

    /// Serves `pages` (path → (content type, body)) on a loopback port with a strict CSP, in a
    /// thread, for the life of the test process.
    fn serve(pages: Vec<(&'static str, &'static str, &'static str)>) -> u16 {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for mut s in l.incoming().flatten() {
                let mut buf = [0u8; 4096];
                let n = s.read(&mut buf).unwrap_or(0);
                let req = String::from_utf8_lossy(&buf[..n]);
                let path = req.split(' ').nth(1).unwrap_or("/").to_string();
                let (status, ctype, body) = pages
                    .iter()
                    .find(|(p, _, _)| *p == path)
                    .map_or(("404 Not Found", "text/plain", "no"), |(_, c, b)| {
                        ("200 OK", *c, *b)
                    });
                let _ = write!(
                    s,
                    "HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\n\
                     Content-Security-Policy: default-src 'self'; script-src 'self'\r\n\
                     Connection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        port
    }

    const PAGE: &str = r#"<!doctype html><html><head><title>Static</title>
<link rel="icon" href="data:,"><script src="/app.js"></script></head>
<body><p id="greeting" data-x="1">hello</p>
<form id="f"><label for="name">Name</label><input id="name" name="name">
<button id="go" type="button">Go</button></form><output id="out"></output>
<script>window.inlineRan = true;</script></body></html>"#;

    const JS: &str = r#"document.addEventListener('DOMContentLoaded', () => {
  document.getElementById('go').addEventListener('click', () => {
    document.getElementById('out').textContent = 'hi ' + document.getElementById('name').value;
    setTimeout(() => { document.body.dataset.later = 'yes'; }, 300);
  });
  console.info('app loaded');
});"#;

    /// The client against Debian's chromium on a static page: navigation, find, type, click,
    /// text and attributes, scripts, wait_for, the console log (an inline script refused by the
    /// CSP is a SEVERE `security` entry; a missing page a SEVERE `network` entry), the requested
    /// URLs, a PNG screenshot at 1280×800, and cookies.
    #[test]
    fn drives_chromium_on_a_static_page() {
        let port = serve(vec![
            ("/", "text/html; charset=utf-8", PAGE),
            ("/app.js", "text/javascript", JS),
        ]);
        let b = Browser::start().unwrap();
        let base = format!("http://127.0.0.1:{port}");
        b.goto(&format!("{base}/")).unwrap();
        assert_eq!(b.title().unwrap(), "Static");
        assert_eq!(b.current_url().unwrap(), format!("{base}/"));
        let p = b.find("#greeting").unwrap();
        assert_eq!(p.text().unwrap(), "hello");
        assert_eq!(p.attribute("data-x").unwrap().as_deref(), Some("1"));
        assert_eq!(p.attribute("data-missing").unwrap(), None);
        assert_eq!(p.tag_name().unwrap(), "p");
        assert!(b.try_find("#nothing").unwrap().is_none());
        let err = b.find("#nothing").unwrap_err();
        assert_eq!(err.code(), Some("no such element"), "{err}");
        let form = b.find("#f").unwrap();
        assert_eq!(form.find_all("input, button").unwrap().len(), 2);
        let name = form.find("#name").unwrap();
        name.send_keys("ann").unwrap();
        assert_eq!(name.property("value").unwrap(), "ann");
        b.find("#go").unwrap().click().unwrap();
        assert_eq!(b.find("#out").unwrap().text().unwrap(), "hi ann");
        let later = b
            .wait_for(Duration::from_secs(5), "data-later", |b| {
                b.find("body")?.attribute("data-later")
            })
            .unwrap();
        assert_eq!(later, "yes");
        let t = b.wait_for(Duration::from_millis(300), "never", |_| Ok(None::<()>));
        assert!(matches!(t, Err(WebDriverError::Timeout { .. })), "{t:?}");
        // The CSP refused the inline script: it did not run, and the console says so.
        assert_eq!(
            b.execute("return window.inlineRan === undefined;", &[])
                .unwrap(),
            true
        );
        assert_eq!(
            b.execute("return arguments[0] + arguments[1];", &[json!(2), json!(3)])
                .unwrap(),
            5
        );
        let log = b.console_log().unwrap();
        assert!(
            log.iter().any(|e| e.is_severe()
                && e.source == "security"
                && e.message.contains("Content Security Policy")),
            "{log:?}"
        );
        assert!(
            log.iter().any(|e| e.message.contains("app loaded")),
            "{log:?}"
        );
        // Drained: the next read has only what came after.
        assert!(
            b.console_log()
                .unwrap()
                .iter()
                .all(|e| !e.message.contains("app loaded"))
        );
        let urls = b.requested_urls().unwrap();
        assert!(urls.contains(&format!("{base}/")), "{urls:?}");
        assert!(urls.contains(&format!("{base}/app.js")), "{urls:?}");
        b.goto(&format!("{base}/missing")).unwrap();
        let log = b.console_log().unwrap();
        assert!(
            log.iter().any(|e| e.is_severe() && e.source == "network"),
            "a 404 is a console error: {log:?}"
        );
        // A page without an icon link makes the browser ask for /favicon.ico too.
        let urls = b.requested_urls().unwrap();
        assert_eq!(urls[0], format!("{base}/missing"), "{urls:?}");
        assert!(
            !urls.contains(&format!("{base}/app.js")),
            "drained: {urls:?}"
        );
        // Screenshot: a PNG of the 1280-wide viewport.
        let png = b.screenshot().unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes([png[16], png[17], png[18], png[19]]);
        assert_eq!(width, 1280);
        // A confirm dialog: its text, then OK.
        b.execute(
            "setTimeout(() => { window.confirmed = confirm('Sure?'); }, 0);",
            &[],
        )
        .unwrap();
        let text = b
            .wait_for(Duration::from_secs(5), "the dialog", |b| {
                b.alert_text().map(Some)
            })
            .unwrap();
        assert_eq!(text, "Sure?");
        b.accept_alert().unwrap();
        assert_eq!(b.execute("return window.confirmed;", &[]).unwrap(), true);
        assert_eq!(b.accept_alert().unwrap_err().code(), Some("no such alert"));
        b.execute("document.cookie = 'k=v; SameSite=Strict; Path=/';", &[])
            .unwrap();
        let c = b.cookie("k").unwrap().unwrap();
        assert_eq!(c["value"], "v");
        assert_eq!(c["sameSite"], "Strict");
        b.delete_cookies().unwrap();
        assert!(b.cookie("k").unwrap().is_none());
        let pid = b.browser_pid.unwrap();
        drop(b);
        assert!(
            !Path::new(&format!("/proc/{pid}/exe")).exists(),
            "the browser is gone after drop"
        );
    }
}
