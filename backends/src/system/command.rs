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
