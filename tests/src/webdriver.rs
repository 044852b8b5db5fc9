//! A minimal W3C WebDriver client for browser tests: chromedriver on a free
//! loopback port (a [`Process`], stopped by PID), one headless Chromium
//! session with a fresh profile, and the few commands the tests need, each
//! bounded in time.
//!
//! The page renders asynchronously (it fetches the API, then draws), so
//! every lookup polls until its element is there or a timeout passes; no
//! test sleeps and hopes.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::{Process, free_port, wait_until};

/// How long a lookup waits for its element by default.
pub const FIND_TIMEOUT: Duration = Duration::from_secs(20);
/// The key under which WebDriver returns an element reference.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Any single WebDriver request (a page load included).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// Chromium and its chromedriver, installed with apt-get (under a lock, as
/// tests run in parallel) when missing.
pub fn chromium() -> (PathBuf, PathBuf) {
    let find = || {
        let browser = ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
            .into_iter()
            .map(PathBuf::from)
            .find(|p| p.exists())?;
        let driver = PathBuf::from("/usr/bin/chromedriver");
        driver.exists().then_some((browser, driver))
    };
    if let Some(found) = find() {
        return found;
    }
    eprintln!("chromium or chromedriver not found; installing them with apt-get");
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0\n") || o.stdout == b"0");
    let sudo = if root { "" } else { "sudo " };
    let script = format!(
        "flock /tmp/pdm-apt.lock sh -c '([ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]) || \
         ({sudo}apt-get update -qq && DEBIAN_FRONTEND=noninteractive {sudo}apt-get install -y -qq chromium chromium-driver)'"
    );
    let status = Command::new("sh").args(["-c", &script]).status();
    find().unwrap_or_else(|| {
        panic!(
            "chromium and chromedriver are needed and could not be installed ({status:?}); \
             apt-get install chromium chromium-driver"
        )
    })
}

/// A WebDriver element reference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

/// An error answered by chromedriver (`no such element`, `stale element
/// reference`, ...) or by the transport.
#[derive(Debug, Clone)]
pub struct WdError {
    pub error: String,
    pub message: String,
}

impl std::fmt::Display for WdError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

/// One headless Chromium, driven through chromedriver.
pub struct Browser {
    base: String,
    session: String,
    http: ureq::Agent,
    driver: Process,
    log_dir: PathBuf,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// Starts chromedriver on a free loopback port, waits until it is
    /// ready and opens a session; its log goes to `log_dir`.
    pub fn start(log_dir: &Path) -> Browser {
        let (chromium, chromedriver) = chromium();
        let port = free_port();
        let driver = Process::start(
            "chromedriver",
            &chromedriver,
            &[&format!("--port={port}"), "--allowed-ips=127.0.0.1"],
            log_dir,
        );
        let base = format!("http://127.0.0.1:{port}");
        let http: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        wait_until("chromedriver ready", Duration::from_secs(30), || {
            let status =
                send(&http, "GET", &format!("{base}/status"), None).map_err(|e| e.to_string())?;
            Ok((status["ready"] == true).then_some(()))
        });
        let profile = tempfile::tempdir().expect("a profile directory");
        let args = [
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            format!("--user-data-dir={}", profile.path().display()),
            "--window-size=1400,1000".to_owned(),
        ];
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "timeouts": { "implicit": 0, "pageLoad": 30_000, "script": 30_000 },
                    "goog:chromeOptions": { "binary": chromium, "args": args }
                }
            }
        });
        let created = send(
            &http,
            "POST",
            &format!("{base}/session"),
            Some(capabilities),
        )
        .unwrap_or_else(|e| panic!("cannot open a Chromium session: {e}"));
        let session = created["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no sessionId in {created}"))
            .to_owned();
        eprintln!(
            "browser: {} {} via chromedriver (pid {})",
            created["capabilities"]["browserName"],
            created["capabilities"]["browserVersion"],
            driver.pid()
        );
        Browser {
            base,
            session,
            http,
            driver,
            log_dir: log_dir.to_owned(),
            _profile: profile,
        }
    }

    /// A command on this session (`path` after `/session/{id}`).
    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, WdError> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        send(&self.http, method, &url, body)
    }

    /// Opens `url` and waits for its load event.
    pub fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .unwrap_or_else(|e| panic!("cannot open {url}: {e}"));
    }

    /// The first element matching `css`, waited for up to [`FIND_TIMEOUT`].
    pub fn find(&self, css: &str) -> Element {
        self.poll(&format!("element `{css}`"), FIND_TIMEOUT, || {
            self.try_find(css)
        })
    }

    /// The first element matching `css` now, if any.
    pub fn try_find(&self, css: &str) -> Result<Option<Element>, WdError> {
        let found = self.cmd(
            "POST",
            "/element",
            Some(json!({ "using": "css selector", "value": css })),
        );
        match found {
            Ok(v) => Ok(v[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned()))),
            Err(e) if e.error == "no such element" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Clicks the element matching `css`, looking it up again if the page
    /// replaced it meanwhile (it refreshes itself).
    pub fn click(&self, css: &str) {
        self.on_element(css, "click", |el| {
            self.cmd("POST", &format!("/element/{}/click", el.0), Some(json!({})))
                .map(drop)
        });
    }

    /// Clears the field matching `css` and types `text` into it.
    pub fn type_into(&self, css: &str, text: &str) {
        self.on_element(css, "type into", |el| {
            self.cmd("POST", &format!("/element/{}/clear", el.0), Some(json!({})))?;
            self.cmd(
                "POST",
                &format!("/element/{}/value", el.0),
                Some(json!({ "text": text })),
            )
            .map(drop)
        });
    }

    /// Sets the value of the `<select>` or `<input>` matching `css` as a user
    /// would (the page hears `input` and `change`); panics if a select has
    /// no such option.
    pub fn select_value(&self, css: &str, value: &str) {
        let el = self.find(css);
        let set = self.execute(
            "const [el, value] = arguments;
             if (el.tagName === 'SELECT' && ![...el.options].some(o => o.value === value)) return false;
             el.value = value;
             el.dispatchEvent(new Event('input', { bubbles: true }));
             el.dispatchEvent(new Event('change', { bubbles: true }));
             return el.value === value;",
            vec![element_arg(&el), json!(value)],
        );
        assert_eq!(set, true, "cannot set `{css}` to {value:?}");
    }

    /// The rendered text of the element matching `css`.
    pub fn text(&self, css: &str) -> String {
        self.on_element(css, "read", |el| {
            let v = self.cmd("GET", &format!("/element/{}/text", el.0), None)?;
            Ok(v.as_str().unwrap_or_default().to_owned())
        })
    }

    /// Runs `js` (a function body; `arguments` holds `args`) in the page and
    /// returns what it returns.
    pub fn execute(&self, js: &str, args: Vec<Value>) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({ "script": js, "args": args })),
        )
        .unwrap_or_else(|e| panic!("script failed: {e}\n{js}"))
    }

    /// Waits until the element matching `css` exists and its text contains
    /// `contains`; returns the text.
    pub fn wait_for_text(&self, css: &str, contains: &str, timeout: Duration) -> String {
        self.poll(&format!("`{css}` to show {contains:?}"), timeout, || {
            let Some(el) = self.try_find(css)? else {
                return Ok(None);
            };
            let text = match self.cmd("GET", &format!("/element/{}/text", el.0), None) {
                Ok(v) => v.as_str().unwrap_or_default().to_owned(),
                Err(e) if retryable(&e) => return Ok(None),
                Err(e) => return Err(e),
            };
            Ok(text.contains(contains).then_some(text))
        })
    }

    /// Whether the element matching `css` is there and rendered (not
    /// `hidden`, not `display: none` anywhere up the tree).
    pub fn is_displayed(&self, css: &str) -> bool {
        self.execute(
            "const el = document.querySelector(arguments[0]);
             return !!el && el.getClientRects().length > 0;",
            vec![json!(css)],
        ) == true
    }

    /// Saves a PNG of the viewport.
    pub fn screenshot(&self, path: &Path) -> Result<(), String> {
        let v = self
            .cmd("GET", "/screenshot", None)
            .map_err(|e| e.to_string())?;
        let png = base64_decode(v.as_str().unwrap_or_default())?;
        std::fs::write(path, png).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Looks `css` up and applies `op`, again while the element goes stale
    /// or is not yet interactable, up to [`FIND_TIMEOUT`].
    fn on_element<T>(
        &self,
        css: &str,
        what: &str,
        mut op: impl FnMut(&Element) -> Result<T, WdError>,
    ) -> T {
        self.poll(&format!("{what} `{css}`"), FIND_TIMEOUT, || {
            let Some(el) = self.try_find(css)? else {
                return Ok(None);
            };
            match op(&el) {
                Ok(v) => Ok(Some(v)),
                Err(e) if retryable(&e) => Err(e),
                Err(e) => panic!("{what} `{css}`: {e}"),
            }
        })
    }

    /// Like [`crate::wait_until`], quietly: polls every 100 ms, panics on
    /// timeout naming `what`, the last observation and the page's text.
    fn poll<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut() -> Result<Option<T>, WdError>,
    ) -> T {
        let started = Instant::now();
        let mut last = String::from("not checked yet");
        while started.elapsed() < timeout {
            match check() {
                Ok(Some(v)) => return v,
                Ok(None) => last = "not there yet".into(),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {timeout:?} waiting for {what}; last: {last}");
    }
}

impl Browser {
    /// What the page looked like when the test failed: a screenshot kept
    /// beside the test's logs and in the temporary folder, and its text.
    fn report_failure(&self) {
        let name = format!("pdm-browser-failure-{}.png", self.driver.pid());
        let shot = self.log_dir.join(&name);
        let kept = std::env::temp_dir().join(&name);
        if self.screenshot(&shot).is_ok() && std::fs::copy(&shot, &kept).is_ok() {
            eprintln!("browser: screenshot of the failure in {}", kept.display());
        }
        let script = json!({ "script": "return document.body.innerText", "args": [] });
        if let Ok(text) = self.cmd("POST", "/execute/sync", Some(script)) {
            let text = text.as_str().unwrap_or_default();
            eprintln!("----- page text at the failure -----\n{text}");
        }
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.report_failure();
        }
        // Deleting the session quits Chromium; then chromedriver stops.
        if let Err(e) = self.cmd("DELETE", "", None) {
            eprintln!("browser: closing the session: {e}");
        }
        if self.driver.terminate(Duration::from_secs(10)).is_none() {
            self.driver.kill();
        }
    }
}

/// The JSON form of an element passed to a script.
pub fn element_arg(el: &Element) -> Value {
    json!({ ELEMENT_KEY: el.0 })
}

/// Errors a fresh lookup may cure: the page re-rendered or is still busy.
fn retryable(e: &WdError) -> bool {
    matches!(
        e.error.as_str(),
        "stale element reference"
            | "no such element"
            | "element not interactable"
            | "element click intercepted"
            | "invalid element state"
    )
}

/// One WebDriver request; answers `value`, or the error it names.
fn send(
    http: &ureq::Agent,
    method: &str,
    url: &str,
    body: Option<Value>,
) -> Result<Value, WdError> {
    let transport = |e: ureq::Error| WdError {
        error: "transport".into(),
        message: format!("{method} {url}: {e}"),
    };
    let mut response = match (method, body) {
        ("GET", _) => http.get(url).call(),
        ("DELETE", _) => http.delete(url).call(),
        (_, Some(body)) => http.post(url).send_json(body),
        (_, None) => http.post(url).send_json(json!({})),
    }
    .map_err(transport)?;
    let status = response.status();
    let answer: Value = response.body_mut().read_json().map_err(transport)?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    if status.is_success() {
        return Ok(value);
    }
    Err(WdError {
        error: value["error"]
            .as_str()
            .unwrap_or("unknown error")
            .to_owned(),
        message: format!(
            "{} (HTTP {status} for {method} {url})",
            value["message"].as_str().unwrap_or_default()
        ),
    })
}

/// Standard base64 (the screenshot), padding and line breaks tolerated.
fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' | b'\n' | b'\r' => continue,
            _ => return Err(format!("not base64: byte {c}")),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::base64_decode;

    #[test]
    fn base64_decodes_with_and_without_padding() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGVsbG8gd29ybGQ").unwrap(), b"hello world");
        assert_eq!(base64_decode("").unwrap(), b"");
        assert!(base64_decode("a*b").is_err());
    }
}
