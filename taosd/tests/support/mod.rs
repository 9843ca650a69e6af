//! Starts the real `taosd` binary on a free loopback port with a temp data dir, and stops it by
//! PID (SIGKILL on request, to test crash recovery).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub port: u16,
    pub dir: tempfile::TempDir,
    child: Option<Child>,
}

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

impl TestServer {
    pub fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut s = TestServer {
            port: free_port(),
            dir,
            child: None,
        };
        s.spawn();
        s
    }

    pub fn cfg_dir(&self) -> PathBuf {
        self.dir.path().join("cfg")
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn write_cfg(&self) {
        let cfg = self.cfg_dir();
        std::fs::create_dir_all(&cfg).expect("cfg dir");
        std::fs::write(
            cfg.join("taos.cfg"),
            format!(
                "# test server\nfqdn 127.0.0.1\nserverPort {}\ndataDir {}\nlogDir {}\ntimezone UTC\n",
                self.port,
                self.data_dir().display(),
                self.dir.path().join("log").display()
            ),
        )
        .expect("write taos.cfg");
    }

    /// (Re)start the process on the same port and data dir.
    pub fn spawn(&mut self) {
        self.write_cfg();
        let log = std::fs::File::create(self.dir.path().join("taosd.out")).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_taosd"))
            .arg("-c")
            .arg(self.cfg_dir())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn taosd");
        self.child = Some(child);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    panic!("taosd exited early ({status}); log:\n{}", self.log());
                }
            }
            if std::fs::read_to_string(self.dir.path().join("taosd.out"))
                .map(|l| l.contains("taosd is ready"))
                .unwrap_or(false)
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("taosd did not become ready; log:\n{}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("taosd.out")).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL: no chance to flush or sync anything.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait: a clean shutdown.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: sending a signal to our own child by pid.
            unsafe {
                libc::kill(c.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill9();
    }
}
