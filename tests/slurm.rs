//! On a real Slurm: a single-node cluster (munged, slurmctld and slurmd on localhost, a generated
//! slurm.conf with one node and one partition) is started by the test and stopped after; the plan of
//! a BFW subset with 3 embedding and 4 comparison shards is submitted with its submit.sh, and the
//! merged report must equal a single-machine run byte for byte. Skips, saying why, only where Slurm
//! cannot start (not installed: `.ci/setup` installs Debian's slurm-wlm and munge);
//! `FACEBIAS_REQUIRE_SLURM=1` makes that a failure.

#[macro_use]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// The daemons of the test cluster, stopped (by their process ids) when dropped.
struct Cluster {
    conf: PathBuf,
    daemons: Vec<Child>,
    munged_pid: Option<u32>,
    dir: PathBuf,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for d in &mut self.daemons {
            let _ = d.kill();
            let _ = d.wait();
        }
        if let Some(pid) = self.munged_pid {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
    }
}

impl Cluster {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(name)).unwrap_or_default()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn installed(program: &str) -> bool {
    ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
        .iter()
        .any(|d| Path::new(d).join(program).is_file())
}

/// Starts munged, slurmctld and slurmd in `dir`; the reason when they cannot start.
fn start_cluster(dir: &Path) -> Result<Cluster, String> {
    let missing: Vec<&str> = ["munged", "slurmctld", "slurmd", "sbatch", "sinfo", "squeue"]
        .into_iter()
        .filter(|p| !installed(p))
        .collect();
    if !missing.is_empty() {
        return Err(format!(
            "{} not installed (`bash .ci/setup` installs Debian's slurm-wlm and munge)",
            missing.join(", ")
        ));
    }
    let d = dir.to_path_buf();
    for sub in ["munge", "state", "spool"] {
        std::fs::create_dir_all(d.join(sub)).unwrap();
    }
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(d.join("munge"), std::fs::Permissions::from_mode(0o700)).unwrap();
    let key = d.join("munge/munge.key");
    let mut f = std::fs::File::open("/dev/urandom").map_err(|e| format!("no /dev/urandom: {e}"))?;
    let mut k = vec![0u8; 1024];
    std::io::Read::read_exact(&mut f, &mut k).unwrap();
    std::fs::write(&key, &k).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o400)).unwrap();
    let socket = d.join("munge/munge.sock");
    let pidfile = d.join("munge/munged.pid");
    let status = Command::new("munged")
        .arg("--force")
        .arg(format!("--socket={}", socket.display()))
        .arg(format!("--key-file={}", key.display()))
        .arg(format!(
            "--log-file={}",
            d.join("munge/munged.log").display()
        ))
        .arg(format!("--pid-file={}", pidfile.display()))
        .arg(format!("--seed-file={}", d.join("munge/seed").display()))
        .status()
        .map_err(|e| format!("munged did not start: {e}"))?;
    if !status.success() {
        return Err(format!(
            "munged did not start ({status}): {}",
            std::fs::read_to_string(d.join("munge/munged.log")).unwrap_or_default()
        ));
    }
    let munged_pid = std::fs::read_to_string(&pidfile)
        .ok()
        .and_then(|s| s.trim().parse().ok());
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let conf = d.join("slurm.conf");
    let (ctl, slurmd) = (free_port(), free_port());
    let p = |n: &str| d.join(n).display().to_string();
    std::fs::write(
        &conf,
        format!(
            "ClusterName=facebias-test\nSlurmctldHost=localhost(127.0.0.1)\nSlurmctldPort={ctl}\nSlurmdPort={slurmd}\n\
             SlurmUser=root\nSlurmdUser=root\nAuthType=auth/munge\nCredType=cred/munge\nAuthInfo=socket={}\n\
             StateSaveLocation={}\nSlurmdSpoolDir={}\nSlurmctldPidFile={}\nSlurmdPidFile={}\n\
             SlurmctldLogFile={}\nSlurmdLogFile={}\nProctrackType=proctrack/linuxproc\nTaskPlugin=task/none\n\
             JobAcctGatherType=jobacct_gather/none\nAccountingStorageType=accounting_storage/none\n\
             JobCompType=jobcomp/none\nSchedulerType=sched/backfill\nSelectType=select/cons_tres\n\
             SelectTypeParameters=CR_CPU\nMpiDefault=none\nReturnToService=2\nSlurmdParameters=config_overrides\n\
             NodeName=localhost NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=2000 State=UNKNOWN\n\
             PartitionName=facebias Nodes=localhost Default=YES MaxTime=INFINITE State=UP\n",
            socket.display(),
            p("state"),
            p("spool"),
            p("slurmctld.pid"),
            p("slurmd.pid"),
            p("slurmctld.log"),
            p("slurmd.log"),
        ),
    )
    .unwrap();
    let mut cluster = Cluster {
        conf: conf.clone(),
        daemons: Vec::new(),
        munged_pid,
        dir: d.clone(),
    };
    for (prog, args) in [
        ("slurmctld", vec!["-D", "-i"]),
        ("slurmd", vec!["-D", "-N", "localhost"]),
    ] {
        let child = Command::new(prog)
            .args(&args)
            .arg("-f")
            .arg(&conf)
            .env("SLURM_CONF", &conf)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(d.join(format!("{prog}.stderr"))).unwrap())
            .spawn()
            .map_err(|e| format!("{prog} did not start: {e}"))?;
        cluster.daemons.push(child);
    }
    let start = Instant::now();
    loop {
        let out = cluster.cmd("sinfo").args(["-h", "-o", "%t"]).output();
        if let Ok(o) = &out {
            let s = String::from_utf8_lossy(&o.stdout).trim().to_string();
            if s == "idle" || s == "mix" || s == "alloc" {
                return Ok(cluster);
            }
        }
        for d in &mut cluster.daemons {
            if let Ok(Some(status)) = d.try_wait() {
                return Err(format!(
                    "a Slurm daemon exited ({status}): {} {}",
                    cluster.log("slurmctld.stderr"),
                    cluster.log("slurmd.stderr")
                ));
            }
        }
        if start.elapsed() > Duration::from_secs(30) {
            return Err(format!(
                "the node did not come up in 30 s: {}\n{}",
                cluster.log("slurmctld.log"),
                cluster.log("slurmd.log")
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_plan_submitted_to_a_real_slurm_merges_into_the_single_machine_report() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = match start_cluster(&dir.path().join("cluster")) {
        Ok(c) => c,
        Err(why) => {
            if std::env::var("FACEBIAS_REQUIRE_SLURM").as_deref() == Ok("1") {
                panic!("FACEBIAS_REQUIRE_SLURM=1 but Slurm cannot start: {why}");
            }
            visible_note!("SKIPPED the real-Slurm test: {why}");
            return;
        }
    };
    let manifest = bfw_subset(dir.path(), 2, 3); // 48 images
    let single = dir.path().join("single");
    let t = Instant::now();
    facebias(&dir.path().join("single-cache"))
        .args(["run", "--quiet", "--bootstrap", "0", "--dataset"])
        .arg(&manifest)
        .arg("--out")
        .arg(&single)
        .assert()
        .success();
    let single_s = t.elapsed().as_secs_f64();
    let plan = dir.path().join("plan");
    facebias(dir.path())
        .args([
            "slurm",
            "plan",
            "--embed-shards",
            "3",
            "--compare-shards",
            "4",
        ])
        .args([
            "--cpus-per-task",
            "1",
            "--partition",
            "facebias",
            "--time",
            "00:10:00",
        ])
        .arg("--dataset")
        .arg(&manifest)
        .arg("--out")
        .arg(&plan)
        .assert()
        .success();
    let t = Instant::now();
    let submit = cluster
        .cmd(plan.join("slurm/submit.sh").to_str().unwrap())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&submit.stdout).to_string();
    assert!(
        submit.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    for job in ["embed ", "embed-merge ", "compare ", "merge "] {
        assert!(said.contains(job), "{said}");
    }
    // Wait until the queue is empty (every job finished, or was cancelled on a failed dependency).
    loop {
        let q = cluster
            .cmd("squeue")
            .args(["-h", "-o", "%i %T"])
            .output()
            .unwrap();
        let queue = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if queue.is_empty() {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(300),
            "jobs still queued after 300 s: {queue}\n{}",
            cluster.log("slurmctld.log")
        );
        std::thread::sleep(Duration::from_millis(250));
    }
    let slurm_s = t.elapsed().as_secs_f64();
    let logs = || {
        std::fs::read_dir(plan.join("logs"))
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| {
                format!(
                    "--- {}\n{}",
                    e.path().display(),
                    std::fs::read_to_string(e.path()).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let status = facebias(dir.path())
        .args(["slurm", "status"])
        .arg(&plan)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout).to_string();
    assert!(status.status.success(), "{text}\n{}", logs());
    assert!(text.contains("all 9 parts done"), "{text}");
    let report = plan.join("report");
    for f in MERGED_REPORT {
        let (x, y) = (
            std::fs::read(single.join(f)).unwrap(),
            std::fs::read(report.join(f)).unwrap(),
        );
        assert!(
            x == y,
            "{f} differs between the single run and the Slurm run"
        );
    }
    // run.json: equal but for how many threads ran (the jobs had one CPU each, the single run all).
    let (mut a, mut b) = (
        record_without_execution(&single),
        record_without_execution(&report),
    );
    assert_eq!(b["runtime"]["workers"], 1);
    assert_eq!(b["compare"]["device"], "cpu (1 threads)");
    for r in [&mut a, &mut b] {
        r["runtime"]["workers"] = serde_json::Value::Null;
        r["compare"]["device"] = serde_json::Value::Null;
    }
    assert_eq!(a, b);
    // Requeue safety: the embedding array run again finishes at once, every shard a no-op.
    let again = cluster
        .cmd("sbatch")
        .args(["--wait", "--quiet"])
        .arg(plan.join("slurm/embed.sbatch"))
        .output()
        .unwrap();
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    for k in 0..3 {
        let log = std::fs::read_to_string(plan.join(format!("logs/embed-{k}.out"))).unwrap();
        assert!(log.contains("nothing to do"), "embed-{k}.out: {log}");
    }
    visible_note!(
        "real Slurm (1 node, {} CPUs): 48 images, 3 embedding + 4 comparison shards, submit to merged report {slurm_s:.1} s; single-machine run {single_s:.1} s",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
}
