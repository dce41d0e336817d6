//! A throwaway CA, a server certificate for 127.0.0.1 and a client
//! certificate, made with the `openssl` command, for TLS to test servers.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::require_binary;

/// PEM files in a directory of their own (removed when dropped).
pub struct TlsFiles {
    dir: PathBuf,
}

impl TlsFiles {
    /// Makes the CA and both certificates (EC P-256, valid one day).
    pub fn generate(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("rollcall-tls-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create the TLS directory");
        let files = Self { dir };
        let key = [
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
        ];
        files.openssl(
            &[
                "req",
                "-x509",
                "-days",
                "1",
                "-subj",
                "/CN=rollcall test CA",
            ],
            &key,
            &["-keyout", "ca.key", "-out", "ca.pem"],
        );
        for (who, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            fs::write(
                files.dir.join(format!("{who}.ext")),
                format!("subjectAltName=IP:127.0.0.1\nextendedKeyUsage={usage}\n"),
            )
            .expect("write an extension file");
            files.openssl(
                &["req", "-subj", &format!("/CN={who}")],
                &key,
                &[
                    "-keyout",
                    &format!("{who}.key"),
                    "-out",
                    &format!("{who}.csr"),
                ],
            );
            files.openssl(
                &[
                    "x509", "-req", "-days", "1", "-CA", "ca.pem", "-CAkey", "ca.key",
                ],
                &["-CAcreateserial"],
                &[
                    "-in",
                    &format!("{who}.csr"),
                    "-out",
                    &format!("{who}.pem"),
                    "-extfile",
                    &format!("{who}.ext"),
                ],
            );
        }
        files
    }

    /// A file of the set: `ca.pem`, `server.pem`, `server.key`,
    /// `client.pem`, `client.key`.
    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }

    fn openssl(&self, a: &[&str], b: &[&str], c: &[&str]) {
        let out = Command::new(require_binary("openssl", "openssl"))
            .current_dir(&self.dir)
            .args(a)
            .args(b)
            .args(c)
            .output()
            .expect("run openssl");
        assert!(
            out.status.success(),
            "openssl {a:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for TlsFiles {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
