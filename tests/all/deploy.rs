//! The Dockerfile and the Kubernetes manifests in deploy/ agree with the
//! binary: every flag they pass exists, ports and probe paths match, the
//! process runs unprivileged, and the ConfigMap's tool manifests validate.
//! (No Docker engine runs on the test machines, so the image is not built
//! here.)

use crate::harness::{repo, toka};
use serde::Deserialize;

fn docs(file: &str) -> Vec<serde_yaml::Value> {
    let text = std::fs::read_to_string(repo().join(file)).expect("read");
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde_yaml::Value::deserialize(d).expect("YAML"))
        .collect()
}

fn flags(args: &[String]) -> Vec<String> {
    args.iter()
        .filter(|a| a.starts_with("--"))
        .cloned()
        .collect()
}

fn port_of_addr(args: &[String]) -> u16 {
    let i = args.iter().position(|a| a == "--addr").expect("--addr");
    args[i + 1]
        .rsplit_once(':')
        .expect("host:port")
        .1
        .parse()
        .expect("port")
}

#[test]
fn kubernetes_manifests_agree_with_the_binary() {
    let help = toka(["serve", "--help"]).run();
    help.assert_code(0);
    let deployment = &docs("deploy/deployment.yaml")[0];
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = serde_yaml::from_value(container["args"].clone()).expect("args");
    assert_eq!(args[0], "serve");
    for flag in flags(&args) {
        assert!(help.stdout.contains(&flag), "{flag} is not a `serve` flag");
    }
    let port = port_of_addr(&args);
    assert_eq!(
        container["ports"][0]["containerPort"].as_u64(),
        Some(u64::from(port))
    );
    let port_name = container["ports"][0]["name"].as_str().expect("port name");
    assert_eq!(container["livenessProbe"]["httpGet"]["path"], "/health");
    assert_eq!(container["livenessProbe"]["httpGet"]["port"], port_name);
    // /status needs an operator's token; readiness is public.
    assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/ready");
    assert_eq!(container["readinessProbe"]["httpGet"]["port"], port_name);
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
        true
    );
    assert!(deployment["spec"]["replicas"].as_u64().unwrap_or(0) >= 2);
    let mounts = container["volumeMounts"].as_sequence().expect("mounts");
    let manifests_dir = &args[args
        .iter()
        .position(|a| a == "--manifests")
        .expect("--manifests")
        + 1];
    assert!(
        mounts
            .iter()
            .any(|m| m["mountPath"].as_str() == Some(manifests_dir))
    );

    // A non-loopback server runs with tokens: the keys come from a Secret,
    // the revocation list from a ConfigMap, both mounted where the flags say.
    let flag_value = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .map(|i| args[i + 1].clone())
            .unwrap_or_else(|| panic!("{flag} missing from the Deployment's args"))
    };
    let keys = flag_value("--auth-keys");
    let revocations = flag_value("--revocations");
    let volumes = deployment["spec"]["template"]["spec"]["volumes"]
        .as_sequence()
        .expect("volumes");
    let mount_of = |path: &str| {
        mounts
            .iter()
            .find(|m| path.starts_with(m["mountPath"].as_str().unwrap_or("-")))
            .and_then(|m| m["name"].as_str())
            .and_then(|name| volumes.iter().find(|v| v["name"].as_str() == Some(name)))
            .unwrap_or_else(|| panic!("nothing is mounted at {path}"))
    };
    assert_eq!(
        mount_of(&keys)["secret"]["secretName"].as_str(),
        Some("toka-auth-keys")
    );
    let revocation_map = mount_of(&revocations)["configMap"]["name"]
        .as_str()
        .expect("the revocations come from a ConfigMap")
        .to_string();
    let auth = &docs("deploy/auth.yaml")[0];
    assert_eq!(
        auth["metadata"]["name"].as_str(),
        Some(revocation_map.as_str())
    );
    let file = revocations.rsplit('/').next().expect("file name");
    assert!(auth["data"][file].is_string(), "the ConfigMap holds {file}");

    // The replicas share their agent runs through PostgreSQL: DATABASE_URL
    // from the Secret deploy/postgres.yaml makes, pointing at its Service.
    let env = container["env"].as_sequence().expect("env");
    let database = env
        .iter()
        .find(|e| e["name"] == "DATABASE_URL")
        .expect("DATABASE_URL is set");
    let secret_ref = &database["valueFrom"]["secretKeyRef"];
    let pg = docs("deploy/postgres.yaml");
    let kind = |k: &str| {
        pg.iter()
            .find(|d| d["kind"] == k)
            .unwrap_or_else(|| panic!("deploy/postgres.yaml has no {k}"))
    };
    let secret = kind("Secret");
    assert_eq!(secret["metadata"]["name"], secret_ref["name"]);
    let db_url = secret["stringData"][secret_ref["key"].as_str().expect("key")]
        .as_str()
        .expect("the Secret holds the URL");
    let pg_service = kind("Service")["metadata"]["name"].as_str().expect("name");
    assert!(
        db_url.starts_with("postgres://") && db_url.contains(&format!("@{pg_service}:5432/")),
        "{db_url} names the PostgreSQL Service {pg_service}"
    );
    assert_eq!(kind("StatefulSet")["spec"]["serviceName"], pg_service);
    assert!(
        help.stdout.contains("DATABASE_URL"),
        "serve reads DATABASE_URL"
    );

    let service = &docs("deploy/service.yaml")[0];
    assert_eq!(service["spec"]["ports"][0]["targetPort"], port_name);
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    // The ConfigMap's manifests are valid manifests for this binary (with
    // the image's plugin directory mapped to the one built here).
    let configmap = &docs("deploy/configmap.yaml")[0];
    let data = configmap["data"].as_mapping().expect("data");
    assert!(!data.is_empty());
    let dir = tempfile::tempdir().expect("tempdir");
    for (name, text) in data {
        let name = name.as_str().expect("key");
        let text = text.as_str().expect("manifest text").replace(
            "/opt/toka/plugins/build",
            &repo().join("plugins/build").display().to_string(),
        );
        if let Err(e) = toka_spec::manifest::parse(&dir.path().join(name), &text) {
            panic!("deploy/configmap.yaml {name}: {e}");
        }
    }
}

#[test]
fn dockerfile_agrees_with_the_binary() {
    let text = std::fs::read_to_string(repo().join("Dockerfile")).expect("Dockerfile");
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix} line"))
            .to_string()
    };
    assert_eq!(
        text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")),
        2,
        "multi-stage"
    );
    let user = line("USER ");
    assert!(!user.contains("root") && user.trim() != "USER 0", "{user}");
    let cmd: Vec<String> =
        serde_json::from_str(line("CMD ").trim_start_matches("CMD ")).expect("CMD is JSON");
    let entry: Vec<String> =
        serde_json::from_str(line("ENTRYPOINT ").trim_start_matches("ENTRYPOINT "))
            .expect("ENTRYPOINT is JSON");
    assert_eq!(entry, ["toka-host"]);
    let help = toka(["serve", "--help"]).run();
    for flag in flags(&cmd) {
        assert!(help.stdout.contains(&flag), "{flag} is not a `serve` flag");
    }
    let port = port_of_addr(&cmd);
    assert_eq!(
        line("EXPOSE ").trim_start_matches("EXPOSE ").trim(),
        port.to_string()
    );
    let health = text
        .lines()
        .find(|l| l.contains("CMD curl"))
        .expect("HEALTHCHECK command");
    assert!(
        health.contains(&format!("127.0.0.1:{port}/health")),
        "{health}"
    );
    assert!(
        text.contains("scripts/build-plugins.sh"),
        "the image builds the plugins"
    );
    // Compiled as the user that serves, into the cache it will read.
    let compile = text
        .find("RUN toka-host tools compile")
        .expect("the image compiles its tools");
    assert!(
        compile > text.find(&user).expect("USER"),
        "compiled after USER"
    );
    toka(["tools", "compile", "--help"]).run().assert_code(0);
}
