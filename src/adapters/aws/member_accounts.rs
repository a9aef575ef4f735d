//! Alarms of an organization's member accounts: the central enricher reads each through the
//! read role `template-member.yaml` creates there (`MEMBER_READ_ROLE_NAME`), assumed with STS,
//! in the alarm's region. Alarms of the relay's own account (`RELAY_ACCOUNT_ID`) are read with
//! the function's own credentials. Without a role name other accounts are not read: their
//! enrichment says so and delivery goes on.

use super::CloudWatchAlarmSource;
use crate::enrich::partition_of;
use crate::ports::{AlarmSource, AlarmSources};
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_config::sts::AssumeRoleProvider;
use aws_sdk_cloudwatch::config::{Region, SharedCredentialsProvider};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Mutex;

/// The name of the enricher's STS sessions in member accounts (their CloudTrail shows it).
const SESSION_NAME: &str = "alarm-relay-enricher";

/// The relay's own alarms and, with a read role name, its member accounts'.
pub struct MemberAccounts {
    aws: SdkConfig,
    home: Arc<dyn AlarmSource>,
    relay_account: Option<String>,
    role_name: Option<String>,
    /// One source per (account, region), built on first use; STS credentials refresh inside.
    members: Mutex<HashMap<(String, String), Arc<dyn AlarmSource>>>,
}

impl MemberAccounts {
    /// `relay_account`: this account (alarms of any other are members'); `role_name`: the read
    /// role in each member account, `None` to read this account only.
    pub fn new(aws: &SdkConfig, relay_account: Option<String>, role_name: Option<String>) -> Self {
        Self {
            home: Arc::new(CloudWatchAlarmSource::from_sdk_config(aws)),
            aws: aws.clone(),
            relay_account,
            role_name,
            members: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl AlarmSources for MemberAccounts {
    async fn for_account(
        &self,
        account: &str,
        region: &str,
    ) -> Result<Arc<dyn AlarmSource>, String> {
        let own = self
            .relay_account
            .as_deref()
            .is_none_or(|relay| relay == account);
        if account.is_empty() || own {
            return Ok(self.home.clone());
        }
        let Some(role_name) = &self.role_name else {
            return Err(format!(
                "the alarm is in account {account}, which this relay does not read: set OrganizationId and deploy template-member.yaml there"
            ));
        };
        let mut members = self.members.lock().await;
        let key = (account.to_owned(), region.to_owned());
        if let Some(source) = members.get(&key) {
            return Ok(source.clone());
        }
        let role = format!(
            "arn:{}:iam::{account}:role/{role_name}",
            partition_of("", region)
        );
        if self.aws.time_source().is_none() || self.aws.sleep_impl().is_none() {
            // AssumeRoleProvider needs both (aws_config::load_defaults provides them).
            return Err(
                "the AWS configuration has no time source: member accounts are not read".into(),
            );
        }
        let region = Region::new(region.to_owned());
        let provider = AssumeRoleProvider::builder(role)
            .session_name(SESSION_NAME)
            .region(region.clone())
            .configure(&self.aws)
            .build()
            .await;
        let config = self
            .aws
            .to_builder()
            .credentials_provider(SharedCredentialsProvider::new(provider))
            .region(region)
            .build();
        let source: Arc<dyn AlarmSource> =
            Arc::new(CloudWatchAlarmSource::from_sdk_config(&config));
        members.insert(key, source.clone());
        Ok(source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_config::BehaviorVersion;

    /// What the Lambda loads, with fixed credentials and region (nothing is asked of AWS).
    async fn aws() -> SdkConfig {
        aws_config::defaults(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .credentials_provider(aws_sdk_cloudwatch::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .load()
            .await
    }

    #[tokio::test]
    async fn the_relay_reads_its_own_account_and_members_only_through_their_role() {
        let relay = Some("123456789012".to_owned());
        let alone = MemberAccounts::new(&aws().await, relay.clone(), None);
        let home = alone
            .for_account("123456789012", "us-east-1")
            .await
            .unwrap();
        assert!(Arc::ptr_eq(&home, &alone.home));
        assert!(Arc::ptr_eq(
            &alone.for_account("", "us-east-1").await.unwrap(),
            &alone.home
        ));
        let refused = alone
            .for_account("111122223333", "us-east-1")
            .await
            .err()
            .unwrap();
        assert!(refused.contains("111122223333") && refused.contains("template-member.yaml"));

        let organization =
            MemberAccounts::new(&aws().await, relay, Some("alarm-relay-member-read".into()));
        let member = organization
            .for_account("111122223333", "eu-west-1")
            .await
            .unwrap();
        assert!(!Arc::ptr_eq(&member, &organization.home));
        assert!(
            member.top_contributors().is_some() && home.top_contributors().is_some(),
            "Network Flow Monitor is asked in the member's account too"
        );
        let again = organization
            .for_account("111122223333", "eu-west-1")
            .await
            .unwrap();
        assert!(
            Arc::ptr_eq(&member, &again),
            "one source per account and region"
        );
    }
}
