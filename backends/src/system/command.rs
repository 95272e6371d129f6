//! Commands an integrator configures (factory reset and the like).

use std::process::Stdio;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::process::Command;

use super::SystemError;

/// How much of the end of stderr a failure reports.
const TAIL_BYTES: usize = 1024;

/// After the program exits, how long to wait for the rest of its stderr. A background
/// process it started may hold the pipe open for ever, so EOF cannot be awaited.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(200);

/// Runs `argv[0]` with the arguments `argv[1..]` (no shell), stdin from /dev/null, stdout
/// inherited, and waits for it. A non-zero exit or a death by signal is an error holding
/// the end of its stderr.
pub async fn run_command(argv: &[String]) -> Result<(), SystemError> {
    let (program, args) = argv.split_first().ok_or(SystemError::EmptyCommand)?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| SystemError::Spawn {
            program: program.clone(),
            source,
        })?;

    let mut tail = Tail::default();
    let mut stderr = child.stderr.take();
    let mut buf = [0u8; 1024];
    let status = loop {
        let Some(pipe) = stderr.as_mut() else {
            break child.wait().await;
        };
        tokio::select! {
            status = child.wait() => break status,
            read = pipe.read(&mut buf) => match read {
                Ok(n) if n > 0 => tail.push(buf.get(..n).unwrap_or_default()),
                _ => stderr = None,
            },
        }
    };
    let status = status.map_err(|source| SystemError::Wait {
        program: program.clone(),
        source,
    })?;
    if let Some(pipe) = stderr.as_mut() {
        while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_TIMEOUT, pipe.read(&mut buf)).await {
            if n == 0 {
                break;
            }
            tail.push(buf.get(..n).unwrap_or_default());
        }
    }

    if status.success() {
        Ok(())
    } else {
        Err(SystemError::CommandFailed {
            program: program.clone(),
            status,
            stderr_tail: tail.text(),
        })
    }
}

/// Runs `argv` (no shell) with stdin from /dev/null and returns what it printed on
/// stdout. Bounded in time and size: a program still running after `timeout` is killed,
/// one printing more than `max_stdout` bytes is killed too; both are errors, as are a
/// non-zero exit and a death by signal (with the end of stderr).
pub async fn capture(
    argv: &[String],
    timeout: Duration,
    max_stdout: usize,
) -> Result<Vec<u8>, SystemError> {
    let (program, args) = argv.split_first().ok_or(SystemError::EmptyCommand)?;
    // kill_on_drop: when the timeout drops the work below, the child goes with it.
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|source| SystemError::Spawn {
            program: program.clone(),
            source,
        })?;
    let work = async move {
        let mut stdout = child.stdout.take();
        let mut stderr = child.stderr.take();
        let mut out = Vec::new();
        let mut tail = Tail::default();
        let mut obuf = [0u8; 1024];
        let mut ebuf = [0u8; 1024];
        let mut status = None;
        while status.is_none() || stdout.is_some() {
            // After the exit, a background process it started may hold the pipes open
            // for ever: what is left is read for a moment only.
            let drain = async {
                match status {
                    Some(_) => tokio::time::sleep(DRAIN_TIMEOUT).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                s = child.wait(), if status.is_none() => status = Some(s),
                r = read_some(&mut stdout, &mut obuf) => match r {
                    Ok(n) if n > 0 => {
                        let chunk = obuf.get(..n).unwrap_or_default();
                        if out.len().saturating_add(n) > max_stdout {
                            return Err(SystemError::OutputTooLong {
                                program: program.clone(),
                                limit: max_stdout,
                            });
                        }
                        out.extend_from_slice(chunk);
                    }
                    _ => stdout = None,
                },
                r = read_some(&mut stderr, &mut ebuf) => match r {
                    Ok(n) if n > 0 => tail.push(ebuf.get(..n).unwrap_or_default()),
                    _ => stderr = None,
                },
                _ = drain => break,
            }
        }
        if let Some(pipe) = stderr.as_mut() {
            while let Ok(Ok(n)) = tokio::time::timeout(DRAIN_TIMEOUT, pipe.read(&mut ebuf)).await {
                if n == 0 {
                    break;
                }
                tail.push(ebuf.get(..n).unwrap_or_default());
            }
        }
        // The loop ends only once the status is in (the drain needs it).
        let status = status
            .unwrap_or_else(|| Err(std::io::Error::other("no exit status")))
            .map_err(|source| SystemError::Wait {
                program: program.clone(),
                source,
            })?;
        if status.success() {
            Ok(out)
        } else {
            Err(SystemError::CommandFailed {
                program: program.clone(),
                status,
                stderr_tail: tail.text(),
            })
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(SystemError::TimedOut {
            program: program.clone(),
            after: timeout,
        }),
    }
}

async fn read_some<R: tokio::io::AsyncRead + Unpin>(
    pipe: &mut Option<R>,
    buf: &mut [u8],
) -> std::io::Result<usize> {
    match pipe.as_mut() {
        Some(p) => p.read(buf).await,
        None => std::future::pending().await,
    }
}

/// The last [`TAIL_BYTES`] of a stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        let excess = self.0.len().saturating_sub(TAIL_BYTES);
        self.0.drain(..excess);
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0).trim().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(args: &[&str]) -> Vec<String> {
        args.iter().map(|a| a.to_string()).collect()
    }

    #[tokio::test]
    async fn success() {
        run_command(&argv(&["true"])).await.unwrap();
        run_command(&argv(&["sh", "-c", "echo noise >&2; exit 0"]))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn failure_reports_status_and_stderr() {
        let err = run_command(&argv(&["sh", "-c", "echo 'no space left' >&2; exit 3"]))
            .await
            .unwrap_err();
        match &err {
            SystemError::CommandFailed {
                program,
                status,
                stderr_tail,
            } => {
                assert_eq!(program, "sh");
                assert_eq!(status.code(), Some(3));
                assert_eq!(stderr_tail, "no space left");
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(err.to_string(), "sh failed (exit status: 3): no space left");
    }

    #[tokio::test]
    async fn long_stderr_keeps_its_end() {
        let script = "i=0; while [ $i -lt 500 ]; do echo line $i >&2; i=$((i+1)); done; exit 1";
        let err = run_command(&argv(&["sh", "-c", script])).await.unwrap_err();
        let SystemError::CommandFailed { stderr_tail, .. } = err else {
            panic!("unexpected {err:?}");
        };
        assert!(stderr_tail.len() <= TAIL_BYTES);
        assert!(stderr_tail.ends_with("line 499"), "{stderr_tail}");
    }

    #[tokio::test]
    async fn background_child_holding_stderr_does_not_block() {
        // The grandchild keeps the pipe open long after the script has exited.
        let err = run_command(&argv(&["sh", "-c", "sleep 5 & echo bye >&2; exit 2"]))
            .await
            .unwrap_err();
        let SystemError::CommandFailed { stderr_tail, .. } = err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(stderr_tail, "bye");
    }

    #[tokio::test]
    async fn killed_by_signal() {
        let err = run_command(&argv(&["sh", "-c", "kill -9 $$"]))
            .await
            .unwrap_err();
        let SystemError::CommandFailed { status, .. } = err else {
            panic!("unexpected {err:?}");
        };
        assert_eq!(status.code(), None);
    }

    #[tokio::test]
    async fn capture_returns_stdout() {
        let out = capture(
            &argv(&["sh", "-c", "echo 42; echo noise >&2"]),
            Duration::from_secs(30),
            100,
        )
        .await
        .unwrap();
        assert_eq!(out, b"42\n");
        // A background child holding stdout does not hold the answer.
        let out = capture(
            &argv(&["sh", "-c", "sleep 5 & echo 7"]),
            Duration::from_secs(30),
            100,
        )
        .await
        .unwrap();
        assert_eq!(out, b"7\n");
    }

    #[tokio::test]
    async fn capture_is_bounded() {
        let err = capture(&argv(&["sleep", "30"]), Duration::from_millis(300), 100)
            .await
            .unwrap_err();
        assert!(matches!(err, SystemError::TimedOut { .. }), "{err}");
        let err = capture(&argv(&["yes"]), Duration::from_secs(30), 4096)
            .await
            .unwrap_err();
        assert!(
            matches!(err, SystemError::OutputTooLong { limit: 4096, .. }),
            "{err}"
        );
        let err = capture(
            &argv(&["sh", "-c", "echo half; echo broken >&2; exit 4"]),
            Duration::from_secs(30),
            100,
        )
        .await
        .unwrap_err();
        assert_eq!(err.to_string(), "sh failed (exit status: 4): broken");
    }

    #[tokio::test]
    async fn missing_program_and_empty_argv() {
        let err = run_command(&argv(&["/nonexistent/program"]))
            .await
            .unwrap_err();
        assert!(matches!(err, SystemError::Spawn { .. }));
        assert!(err
            .to_string()
            .starts_with("cannot start /nonexistent/program: "));
        assert!(matches!(
            run_command(&[]).await,
            Err(SystemError::EmptyCommand)
        ));
    }
}
