//! One task per file or command binding: it reads on its interval and carries out the
//! server's Writes and Executes, one thing at a time, so a binding never runs
//! concurrently with itself and a hanging command holds up nothing but its own resource.

use std::collections::BTreeMap;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use std::time::Duration;

use super::{reading, Binding, Source, MAX_READING};
use crate::feed::{Feed, FeedSender};
use crate::model::{BoundOp, BoundRequest, DmError};
use crate::path::Path;
use crate::value::{ResourceValue, Value};

/// Requests one binding may have waiting; beyond that the server is told to retry.
const QUEUE: usize = 4;

/// The running bindings, by resource path.
#[derive(Default)]
pub struct Bindings {
    routes: BTreeMap<Path, Route>,
}

struct Route {
    requests: mpsc::Sender<BoundRequest>,
    /// The shortest pmin of the observations on the resource, `None` when unobserved.
    observed: watch::Sender<Option<Duration>>,
}

impl Bindings {
    /// Starts a task per binding on the current runtime; they report through `feed`.
    pub fn spawn(bindings: Vec<Binding>, feed: &FeedSender) -> Bindings {
        let mut routes = BTreeMap::new();
        for b in bindings {
            let (requests, rx) = mpsc::channel(QUEUE);
            let (observed, observed_rx) = watch::channel(None);
            routes.insert(b.path, Route { requests, observed });
            tokio::spawn(run(b, rx, observed_rx, feed.clone()));
        }
        Bindings { routes }
    }

    /// Tells each binding how soon its observers want changes (`Engine::observed_pmin`);
    /// a task is woken only when that changes.
    pub fn observe(&self, observed_pmin: impl Fn(&Path) -> Option<Duration>) {
        for (path, route) in &self.routes {
            let now = observed_pmin(path);
            route.observed.send_if_modified(|old| {
                let changed = *old != now;
                *old = now;
                changed
            });
        }
    }

    /// Hands a server's Write or Execute to its binding; the outcome comes back as
    /// `Feed::Done`. An error here means no task took it.
    pub fn dispatch(&self, request: BoundRequest) -> Result<(), DmError> {
        let route = self.routes.get(&request.path).ok_or(DmError::NotFound)?;
        let path = request.path;
        route.requests.try_send(request).map_err(|_| {
            tracing::warn!("{path}: still busy with earlier requests");
            DmError::Internal(format!("{path} is busy"))
        })
    }
}

async fn run(
    b: Binding,
    mut requests: mpsc::Receiver<BoundRequest>,
    mut observed: watch::Receiver<Option<Duration>>,
    feed: FeedSender,
) {
    let mut sampler = Sampler::default();
    // The next reading is due a period after the end of the last one, so a slow command
    // is not run back to back; the first one is due at once.
    let mut last: Option<Instant> = None;
    let mut watching = true;
    loop {
        let period = b.period(*observed.borrow());
        let due = last.map_or_else(Instant::now, |t| t + period);
        tokio::select! {
            _ = tokio::time::sleep_until(due), if b.readable => {
                if !sampler.sample(&b, &feed).await {
                    return;
                }
                last = Some(Instant::now());
            }
            // A new period applies from the last reading: the loop recomputes `due`.
            r = observed.changed(), if watching => watching = r.is_ok(),
            request = requests.recv() => {
                let Some(request) = request else { return };
                let result = carry_out(&b, &request.op).await;
                if let Err(e) = &result {
                    tracing::warn!(path = %b.path, "{e}");
                }
                // Read back before answering, so that a Read after the 2.04 sees the
                // written value rather than the one from the last tick.
                if result.is_ok() && b.readable && matches!(request.op, BoundOp::Write(_))
                    && !sampler.sample(&b, &feed).await
                {
                    return;
                }
                let report = Feed::Done {
                    ticket: request.ticket,
                    result: result.map_err(DmError::Internal),
                };
                if feed.send(report).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The last value reported and the last error logged, so that neither repeats.
#[derive(Default)]
struct Sampler {
    last: Option<Value>,
    failing: Option<String>,
}

impl Sampler {
    /// Reads the binding and reports a changed value; false once the daemon is gone.
    async fn sample(&mut self, b: &Binding, feed: &FeedSender) -> bool {
        match read(b).await {
            Ok(v) => {
                if self.failing.take().is_some() {
                    tracing::info!(path = %b.path, "reading again");
                }
                if self.last.as_ref() == Some(&v) {
                    return true;
                }
                self.last = Some(v.clone());
                feed.send(Feed::Value(b.path, ResourceValue::Single(v)))
                    .await
                    .is_ok()
            }
            Err(e) => {
                // A missing file or failing command is logged once, not every interval;
                // the last good value stays readable meanwhile.
                if self.failing.as_deref() != Some(e.as_str()) {
                    tracing::warn!(path = %b.path, "{e}");
                    self.failing = Some(e);
                }
                true
            }
        }
    }
}

async fn read(b: &Binding) -> Result<Value, String> {
    let raw = match &b.source {
        Source::File(file) => read_file(file)
            .await
            .map_err(|e| format!("reading {}: {e}", file.display()))?,
        Source::Command { argv, timeout } => backends::system::capture(argv, *timeout, MAX_READING)
            .await
            .map_err(|e| e.to_string())?,
    };
    reading::parse(&raw, b.ty, b.scale, b.offset).map_err(|e| format!("{e}"))
}

async fn read_file(file: &std::path::Path) -> std::io::Result<Vec<u8>> {
    let f = tokio::fs::File::open(file).await?;
    let mut out = Vec::new();
    // One byte more than allowed tells an oversized file from one that fits exactly.
    let limit = u64::try_from(MAX_READING)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    f.take(limit).read_to_end(&mut out).await?;
    if out.len() > MAX_READING {
        return Err(std::io::Error::other(format!(
            "larger than {MAX_READING} bytes"
        )));
    }
    Ok(out)
}

async fn carry_out(b: &Binding, op: &BoundOp) -> Result<(), String> {
    match (op, &b.source) {
        (BoundOp::Write(v), Source::File(file)) => {
            let text = reading::format(v, b.scale, b.offset).map_err(|e| e.to_string())?;
            tokio::fs::write(file, text)
                .await
                .map_err(|e| format!("writing {}: {e}", file.display()))
        }
        (BoundOp::Write(v), Source::Command { argv, timeout }) => {
            let text = reading::format(v, b.scale, b.offset).map_err(|e| e.to_string())?;
            let mut argv = argv.clone();
            argv.push(text);
            run_command(&argv, *timeout).await
        }
        (BoundOp::Execute(args), Source::Command { argv, timeout }) => {
            let mut argv = argv.clone();
            if !args.is_empty() {
                argv.push(args.clone());
            }
            run_command(&argv, *timeout).await
        }
        (BoundOp::Execute(_), Source::File(_)) => Err("a file cannot be executed".into()),
    }
}

async fn run_command(argv: &[String], timeout: std::time::Duration) -> Result<(), String> {
    backends::system::capture(argv, timeout, MAX_READING)
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed;
    use crate::value::ResourceType;

    fn binding(path: Path, ty: ResourceType, source: Source) -> Binding {
        Binding {
            path,
            ty,
            readable: true,
            source,
            scale: None,
            offset: None,
            interval: Duration::from_secs(3600),
            min_interval: Duration::from_secs(1),
        }
    }

    async fn next(rx: &mut feed::FeedReceiver) -> Feed {
        tokio::time::timeout(Duration::from_secs(60), rx.recv())
            .await
            .unwrap()
            .unwrap()
    }

    #[tokio::test]
    async fn file_read_write_and_a_failing_command() {
        let dir = std::env::temp_dir().join(format!("lwm2md-bindtask-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("level");
        std::fs::write(&file, "21500\n").unwrap();
        let level = Path::resource(33000, 0, 1);
        let mut b = binding(level, ResourceType::Float, Source::File(file.clone()));
        b.scale = Some(0.001);
        let fail = Path::resource(33000, 0, 2);
        let cmd = binding(
            fail,
            ResourceType::String,
            Source::Command {
                argv: ["/bin/sh", "-c", "echo \"no $1\" >&2; exit 1", "x"]
                    .map(String::from)
                    .to_vec(),
                timeout: Duration::from_secs(30),
            },
        );
        let (tx, mut rx) = feed::channel();
        let bindings = Bindings::spawn(vec![b, cmd], &tx);
        assert_eq!(
            next(&mut rx).await,
            Feed::Value(level, ResourceValue::Single(Value::Float(21.5)))
        );
        bindings
            .dispatch(BoundRequest {
                ticket: 7,
                path: level,
                op: BoundOp::Write(Value::Float(30.25)),
            })
            .unwrap();
        let mut got = vec![next(&mut rx).await, next(&mut rx).await];
        got.retain(|f| {
            !matches!(f, Feed::Done { .. })
                || *f
                    == Feed::Done {
                        ticket: 7,
                        result: Ok(()),
                    }
        });
        assert!(
            got.contains(&Feed::Value(
                level,
                ResourceValue::Single(Value::Float(30.25))
            )),
            "{got:?}"
        );
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "30250");

        bindings
            .dispatch(BoundRequest {
                ticket: 8,
                path: fail,
                op: BoundOp::Execute("1".into()),
            })
            .unwrap();
        loop {
            match next(&mut rx).await {
                Feed::Done { ticket: 8, result } => {
                    let e = result.unwrap_err();
                    assert!(e.to_string().contains("no 1"), "{e}");
                    break;
                }
                _ => continue,
            }
        }
        assert_eq!(
            bindings.dispatch(BoundRequest {
                ticket: 9,
                path: Path::resource(1, 0, 0),
                op: BoundOp::Execute(String::new()),
            }),
            Err(DmError::NotFound)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
