//! The emulator's control plane (`/moto-api/`): readiness, configuration, random seed, reset.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::common::LabError;

/// The AWS services that run irf's code in AWS, which the lab stands in for when it hands
/// their roles' credentials out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServicePrincipal {
    /// An instance's metadata service (instance profiles).
    Ec2,
    /// A Lambda function's execution role (the tag trigger).
    Lambda,
    /// EventBridge, forwarding a member account's events with the role its rule names.
    Events,
    /// An ECS task's role (the imaging worker).
    EcsTasks,
}

impl ServicePrincipal {
    /// The service principal as trust policies name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ec2 => "ec2.amazonaws.com",
            Self::Lambda => "lambda.amazonaws.com",
            Self::Events => "events.amazonaws.com",
            Self::EcsTasks => "ecs-tasks.amazonaws.com",
        }
    }
}

/// A control call should answer at once on loopback; anything slower means trouble.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(30);

/// A client for one emulator's control plane.
#[derive(Debug, Clone)]
pub struct Control {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Control {
    /// A client for the emulator listening at `endpoint` (`http://127.0.0.1:PORT`).
    pub fn new(endpoint: &str) -> Self {
        Self {
            base: endpoint.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<String>,
    ) -> Result<String, LabError> {
        let uri = format!("{}{path}", self.base);
        let failed = |message: String| LabError::Control {
            uri: uri.clone(),
            message,
        };
        let request = hyper::Request::builder()
            .method(method)
            .uri(&uri)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|err| failed(err.to_string()))?;
        let response = tokio::time::timeout(CONTROL_TIMEOUT, self.client.request(request))
            .await
            .map_err(|_| failed("no answer within 30 s".into()))?
            .map_err(|err| failed(err.to_string()))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|err| failed(err.to_string()))?
            .to_bytes();
        let text = String::from_utf8_lossy(&body).into_owned();
        if status.is_success() {
            Ok(text)
        } else {
            Err(failed(format!(
                "HTTP {status}: {}",
                text.chars().take(300).collect::<String>()
            )))
        }
    }

    /// True when the emulator answers.
    pub async fn is_ready(&self) -> bool {
        self.call("GET", "/moto-api/", None).await.is_ok()
    }

    /// Turns on what the lab needs: Step Functions executions really run, Lambda without Docker.
    pub async fn configure(&self) -> Result<(), LabError> {
        let body = serde_json::json!({
            "lambda": { "use_docker": false },
            "stepfunctions": { "execute_state_machine": true },
        });
        self.call("POST", "/moto-api/config", Some(body.to_string()))
            .await
            .map(drop)
    }

    /// Seeds the emulator's id generator, so that account, instance and volume ids are the
    /// same for the same seed.
    pub async fn seed_ids(&self, seed: u64) -> Result<(), LabError> {
        self.call("POST", &format!("/moto-api/seed?a={seed}"), None)
            .await
            .map(drop)
    }

    /// Sets the delay added to every AWS call and resets the call count.
    pub async fn set_latency(&self, milliseconds: u32) -> Result<(), LabError> {
        self.call("POST", &format!("/irf-lab/latency?ms={milliseconds}"), None)
            .await
            .map(drop)
    }

    /// AWS calls answered since the latency was last set.
    pub async fn calls(&self) -> Result<u64, LabError> {
        let text = self.call("GET", "/irf-lab/stats", None).await?;
        serde_json::from_str::<serde_json::Value>(&text)
            .ok()
            .and_then(|v| v["calls"].as_u64())
            .ok_or_else(|| LabError::Control {
                uri: "/irf-lab/stats".into(),
                message: format!("unexpected answer '{text}'"),
            })
    }

    /// Registers the raw image of each EBS volume, so that snapshots of those volumes
    /// give their blocks through the EBS direct APIs.
    pub async fn register_volume_images(
        &self,
        images: &std::collections::BTreeMap<String, std::path::PathBuf>,
    ) -> Result<(), LabError> {
        let body = serde_json::json!({ "volumes": images });
        self.call("POST", "/irf-lab/volume-images", Some(body.to_string()))
            .await
            .map(drop)
    }

    /// Makes the next `count` snapshot blocks served carry a flipped byte under the true
    /// checksum, as a damaged transfer would.
    pub async fn corrupt_blocks(&self, count: u32) -> Result<(), LabError> {
        let body = serde_json::json!({ "corrupt_blocks": count });
        self.call("POST", "/irf-lab/faults", Some(body.to_string()))
            .await
            .map(drop)
    }

    /// The fault counters: blocks still to corrupt, blocks served corrupted.
    pub async fn faults(&self) -> Result<serde_json::Value, LabError> {
        self.get_json("/irf-lab/faults").await
    }

    /// Signs `user` in to the lab's IAM Identity Center with the given (account, role)
    /// assignments, for `lifetime`: the access token and its end (RFC 3339), as `aws sso
    /// login` writes them to the token cache.
    pub async fn sso_sign_in(
        &self,
        user: &str,
        assignments: &[(&str, &str)],
        lifetime: Duration,
    ) -> Result<(String, String), LabError> {
        let body = serde_json::json!({
            "user": user,
            "assignments": assignments
                .iter()
                .map(|(account, role)| serde_json::json!({"account_id": account, "role_name": role}))
                .collect::<Vec<_>>(),
            "lifetime_seconds": lifetime.as_secs(),
        });
        let text = self
            .call("POST", "/irf-lab/sso/token", Some(body.to_string()))
            .await?;
        let answer: serde_json::Value =
            serde_json::from_str(&text).map_err(|err| LabError::Control {
                uri: "/irf-lab/sso/token".to_owned(),
                message: format!("not JSON ({err})"),
            })?;
        let field = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
        Ok((field("accessToken"), field("expiresAt")))
    }

    /// A control endpoint's JSON answer.
    pub async fn get_json(&self, path: &str) -> Result<serde_json::Value, LabError> {
        let text = self.call("GET", path, None).await?;
        serde_json::from_str(&text).map_err(|err| LabError::Control {
            uri: path.to_owned(),
            message: format!(
                "not JSON ({err}): {}",
                text.chars().take(200).collect::<String>()
            ),
        })
    }

    /// Posts JSON to a control endpoint.
    pub async fn post_json(&self, path: &str, body: &serde_json::Value) -> Result<(), LabError> {
        self.call("POST", path, Some(body.to_string()))
            .await
            .map(drop)
    }

    /// Posts JSON to a control endpoint and reads its JSON answer.
    pub async fn post_for_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> Result<serde_json::Value, LabError> {
        let text = self.call("POST", path, Some(body.to_string())).await?;
        serde_json::from_str(&text).map_err(|err| LabError::Control {
            uri: path.to_owned(),
            message: format!("not JSON ({err})"),
        })
    }

    /// Credentials of `role_arn` as the AWS service `service` gets them for the resource
    /// `source_arn` it runs (a task, a function, an instance): refused when the role's trust
    /// policy does not let the service assume it for that resource.
    pub async fn service_credentials(
        &self,
        service: ServicePrincipal,
        role_arn: &str,
        session_name: &str,
        source_arn: &str,
    ) -> Result<crate::common::LabCredentials, LabError> {
        let answer = self
            .post_for_json(
                "/irf-lab/service-credentials",
                &serde_json::json!({
                    "service": service.as_str(),
                    "role_arn": role_arn,
                    "session_name": session_name,
                    "source_arn": source_arn,
                }),
            )
            .await?;
        let field = |name: &str| answer[name].as_str().unwrap_or_default().to_owned();
        Ok(crate::common::LabCredentials {
            arn: field("Arn"),
            access_key_id: field("AccessKeyId"),
            secret_access_key: field("SecretAccessKey"),
            session_token: field("SessionToken"),
        })
    }

    /// Drops every resource of every account.
    pub async fn reset(&self) -> Result<(), LabError> {
        self.call("POST", "/moto-api/reset", None).await.map(drop)
    }
}
