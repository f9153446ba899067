//! Signatures of ledger entries: each entry's SHA-256 is signed with the deployment's
//! asymmetric KMS key (ECDSA on P-256, `kms:Sign`), and checked against the key's public key,
//! so that whoever may write the case table or the evidence bucket but not use that key cannot
//! add or replace an entry that verifies.

use std::sync::Arc;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{MessageType, SigningAlgorithmSpec};
use aws_types::SdkConfig;
use aws_types::region::Region;
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::aws::AwsError;
use crate::model::ledger::{ALGORITHM, EntrySignature};

/// Signs entries with the deployment's key and checks them against its public key.
#[derive(Debug, Clone)]
pub struct LedgerSigner {
    kms: aws_sdk_kms::Client,
    key_arn: String,
    /// The key's public key (X.509 SubjectPublicKeyInfo, DER), read once.
    public_key: Arc<OnceCell<Vec<u8>>>,
}

impl LedgerSigner {
    /// A signer for the KMS key `key_arn`, called in the key's own region.
    pub fn new(base: &SdkConfig, key_arn: String) -> Self {
        let region = key_arn.split(':').nth(3).filter(|r| !r.is_empty());
        let config = match region {
            Some(region) => base
                .to_builder()
                .region(Region::new(region.to_owned()))
                .build(),
            None => base.clone(),
        };
        Self {
            kms: aws_sdk_kms::Client::new(&config),
            key_arn,
            public_key: Arc::new(OnceCell::new()),
        }
    }

    pub fn key_arn(&self) -> &str {
        &self.key_arn
    }

    /// A failed call on the key, placed in the key's account and region.
    fn failed<E>(
        &self,
        operation: &'static str,
        err: &aws_sdk_kms::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
    ) -> AwsError
    where
        E: aws_sdk_kms::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let field = |n: usize| self.key_arn.split(':').nth(n).unwrap_or_default();
        AwsError::from_sdk(operation, field(4), field(3), err)
    }

    /// Signs an entry's SHA-256 (hex).
    pub async fn sign(&self, sha256: &str) -> Result<EntrySignature, AwsError> {
        let out = self
            .kms
            .sign()
            .key_id(&self.key_arn)
            .message(Blob::new(sha256.as_bytes()))
            .message_type(MessageType::Raw)
            .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
            .send()
            .await
            .map_err(|err| self.failed("kms:Sign", &err))?;
        let value = out.signature().ok_or_else(|| AwsError::Incomplete {
            operation: "kms:Sign",
            missing: format!("a signature from {}", self.key_arn),
        })?;
        Ok(EntrySignature {
            key_arn: self.key_arn.clone(),
            algorithm: ALGORITHM.to_owned(),
            value: aws_smithy_types::base64::encode(value.as_ref()),
        })
    }

    /// The key's public key (DER SubjectPublicKeyInfo), as KMS gives it.
    pub async fn public_key(&self) -> Result<&[u8], AwsError> {
        self.public_key
            .get_or_try_init(|| async {
                let out = self
                    .kms
                    .get_public_key()
                    .key_id(&self.key_arn)
                    .send()
                    .await
                    .map_err(|err| self.failed("kms:GetPublicKey", &err))?;
                out.public_key()
                    .map(|key| key.as_ref().to_vec())
                    .ok_or_else(|| AwsError::Incomplete {
                        operation: "kms:GetPublicKey",
                        missing: format!("the public key of {}", self.key_arn),
                    })
            })
            .await
            .map(Vec::as_slice)
    }

    /// The SHA-256 of the public key, which a report prints so that an examiner can check the
    /// key they verify with is the deployment's.
    pub async fn public_key_sha256(&self) -> Result<String, AwsError> {
        Ok(crate::hex(&Sha256::digest(self.public_key().await?)))
    }

    /// Whether `signature` is this key's signature of `sha256`: `Err` names what is wrong.
    pub async fn check(
        &self,
        sha256: &str,
        signature: Option<&EntrySignature>,
    ) -> Result<Result<(), String>, AwsError> {
        let public_key = self.public_key().await?;
        Ok(check_signature(
            public_key,
            &self.key_arn,
            sha256,
            signature,
        ))
    }
}

/// Whether `signature` is a signature of `sha256` by the key `key_arn` whose public key is
/// `public_key` (DER SubjectPublicKeyInfo). Checked here, not by `kms:Verify`: an examiner
/// with the public key alone reaches the same answer.
pub fn check_signature(
    public_key: &[u8],
    key_arn: &str,
    sha256: &str,
    signature: Option<&EntrySignature>,
) -> Result<(), String> {
    let Some(signature) = signature else {
        return Err(format!(
            "it carries no signature: it was not written by a role that may sign with {key_arn}"
        ));
    };
    if signature.key_arn != key_arn {
        return Err(format!(
            "it is signed with {}, not the deployment's ledger key {key_arn}",
            signature.key_arn
        ));
    }
    if signature.algorithm != ALGORITHM {
        return Err(format!(
            "its signature algorithm is {:?}, not {ALGORITHM}",
            signature.algorithm
        ));
    }
    let der = aws_smithy_types::base64::decode(&signature.value)
        .map_err(|err| format!("its signature is not base64 ({err})"))?;
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1,
        public_key,
    )
    .verify(sha256.as_bytes(), &der)
    .map_err(|_| {
        format!("its signature does not verify with {key_arn}: it was forged or moved from another entry")
    })
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair};

    use super::*;

    const KEY: &str = "arn:aws:kms:eu-west-1:111122223333:key/00000000-1111-2222-3333-444444444444";

    /// A P-256 key pair standing in for the KMS key: its public key as SubjectPublicKeyInfo,
    /// as `kms:GetPublicKey` returns it.
    fn key_pair() -> (EcdsaKeyPair, Vec<u8>) {
        let rng = SystemRandom::new();
        let pkcs8 =
            EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).expect("a key");
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref())
            .expect("the key");
        let spki = pair
            .public_key()
            .as_der()
            .expect("SubjectPublicKeyInfo")
            .as_ref()
            .to_vec();
        (pair, spki)
    }

    fn signed(pair: &EcdsaKeyPair, sha256: &str) -> EntrySignature {
        let der = pair
            .sign(&SystemRandom::new(), sha256.as_bytes())
            .expect("signature");
        EntrySignature {
            key_arn: KEY.to_owned(),
            algorithm: ALGORITHM.to_owned(),
            value: aws_smithy_types::base64::encode(der.as_ref()),
        }
    }

    #[test]
    fn a_signature_verifies_for_its_own_entry_only() {
        let (pair, public_key) = key_pair();
        let sha = "ab".repeat(32);
        let signature = signed(&pair, &sha);
        assert_eq!(
            check_signature(&public_key, KEY, &sha, Some(&signature)),
            Ok(())
        );
        let other = "cd".repeat(32);
        let moved =
            check_signature(&public_key, KEY, &other, Some(&signature)).expect_err("another entry");
        assert!(moved.contains("does not verify"), "{moved}");
    }

    #[test]
    fn a_missing_foreign_or_garbled_signature_is_named() {
        let (pair, public_key) = key_pair();
        let sha = "ab".repeat(32);
        let missing = check_signature(&public_key, KEY, &sha, None).expect_err("missing");
        assert!(missing.contains("no signature"), "{missing}");

        let mut foreign = signed(&pair, &sha);
        foreign.key_arn = KEY.replace("111122223333", "444455556666");
        let foreign = check_signature(&public_key, KEY, &sha, Some(&foreign)).expect_err("key");
        assert!(foreign.contains("444455556666"), "{foreign}");

        let mut garbled = signed(&pair, &sha);
        garbled.value = "not base64!".into();
        let garbled = check_signature(&public_key, KEY, &sha, Some(&garbled)).expect_err("b64");
        assert!(garbled.contains("base64"), "{garbled}");

        // Signed by another key of the same shape.
        let (stranger, _) = key_pair();
        let forged = signed(&stranger, &sha);
        let forged = check_signature(&public_key, KEY, &sha, Some(&forged)).expect_err("forged");
        assert!(forged.contains("does not verify"), "{forged}");
    }
}
