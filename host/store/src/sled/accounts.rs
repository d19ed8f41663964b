//! Accounts, API keys and the admin key hash.

use sled::Transactional;
use sled::transaction::ConflictableTransactionError as Abort;
use time::OffsetDateTime;
use uuid::Uuid;

use super::SledStore;
use super::codec::{SledResultExt, dec, enc, tx_dec, tx_enc, tx_err};
use crate::{Account, ApiKey, KeyHash, StoreError, StoreResult};

const ADMIN_KEY: &[u8] = b"admin_key_hash";

impl SledStore {
    pub(super) fn admin_key_hash_sync(&self) -> StoreResult<Option<KeyHash>> {
        let Some(v) = self
            .t
            .meta
            .get(ADMIN_KEY)
            .ctx("reading the admin key hash")?
        else {
            return Ok(None);
        };
        let bytes: [u8; 32] = v.as_ref().try_into().map_err(|_| StoreError::Decode {
            what: "admin key hash",
            reason: format!("{} bytes instead of 32", v.len()),
        })?;
        Ok(Some(KeyHash(bytes)))
    }

    pub(super) fn set_admin_key_hash_sync(&self, hash: KeyHash) -> StoreResult<()> {
        self.t
            .meta
            .insert(ADMIN_KEY, &hash.0)
            .ctx("writing the admin key hash")?;
        Ok(())
    }

    pub(super) fn create_account_sync(&self, account: &Account) -> StoreResult<()> {
        let value = enc("account", account)?;
        self.t
            .accounts
            .compare_and_swap(account.id.as_bytes(), None as Option<&[u8]>, Some(value))
            .ctx("creating an account")?
            .map_err(|_| StoreError::AlreadyExists { what: "account" })
    }

    pub(super) fn get_account_sync(&self, id: Uuid) -> StoreResult<Option<Account>> {
        match self
            .t
            .accounts
            .get(id.as_bytes())
            .ctx("reading an account")?
        {
            Some(v) => Ok(Some(dec("account", &v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn list_accounts_sync(&self) -> StoreResult<Vec<Account>> {
        let mut out = Vec::new();
        for item in self.t.accounts.iter() {
            let (_, v) = item.ctx("listing accounts")?;
            out.push(dec("account", &v)?);
        }
        Ok(out)
    }

    pub(super) fn update_account_sync(&self, account: &Account) -> StoreResult<bool> {
        let value = enc("account", account)?;
        let key = account.id.as_bytes();
        self.t
            .accounts
            .transaction(|t| {
                if t.get(key)?.is_none() {
                    return Ok(false);
                }
                t.insert(key, value.clone())?;
                Ok(true)
            })
            .map_err(|e| tx_err("updating an account", e))
    }

    pub(super) fn create_api_key_sync(&self, key: &ApiKey) -> StoreResult<()> {
        let value = enc("api key", key)?;
        let by_account = super::keys::pair(key.account_id, key.id);
        (
            &self.t.api_keys,
            &self.t.api_keys_by_account,
            &self.t.api_key_hashes,
        )
            .transaction(|(keys, by_account_t, hashes)| {
                if keys.get(key.id.as_bytes())?.is_some() || hashes.get(key.hash.0)?.is_some() {
                    return Err(Abort::Abort(StoreError::AlreadyExists { what: "api key" }));
                }
                keys.insert(key.id.as_bytes(), value.clone())?;
                by_account_t.insert(&by_account, &[])?;
                hashes.insert(&key.hash.0, key.id.as_bytes())?;
                Ok(())
            })
            .map_err(|e| tx_err("creating an api key", e))
    }

    pub(super) fn api_key_by_hash_sync(&self, hash: &KeyHash) -> StoreResult<Option<ApiKey>> {
        let Some(id) = self
            .t
            .api_key_hashes
            .get(hash.0)
            .ctx("looking up an api key")?
        else {
            return Ok(None);
        };
        let id = super::keys::uuid_at(&id, 0)?;
        self.get_api_key_sync(id)
    }

    pub(super) fn get_api_key_sync(&self, key_id: Uuid) -> StoreResult<Option<ApiKey>> {
        match self
            .t
            .api_keys
            .get(key_id.as_bytes())
            .ctx("reading an api key")?
        {
            Some(v) => Ok(Some(dec("api key", &v)?)),
            None => Ok(None),
        }
    }

    pub(super) fn list_api_keys_sync(&self, account_id: Uuid) -> StoreResult<Vec<ApiKey>> {
        let mut out = Vec::new();
        for item in self
            .t
            .api_keys_by_account
            .scan_prefix(account_id.as_bytes())
        {
            let (k, _) = item.ctx("listing api keys")?;
            let id = super::keys::uuid_at(&k, 16)?;
            if let Some(key) = self.get_api_key_sync(id)? {
                out.push(key);
            }
        }
        out.sort_by_key(|k| (k.created_at, k.id));
        Ok(out)
    }

    pub(super) fn revoke_api_key_sync(
        &self,
        key_id: Uuid,
        at: OffsetDateTime,
    ) -> StoreResult<Option<ApiKey>> {
        let key = key_id.as_bytes();
        self.t
            .api_keys
            .transaction(|t| {
                let Some(v) = t.get(key)? else {
                    return Ok(None);
                };
                let mut api_key: ApiKey = tx_dec("api key", &v)?;
                if api_key.revoked_at.is_none() {
                    api_key.revoked_at = Some(at);
                    t.insert(key, tx_enc("api key", &api_key)?)?;
                }
                Ok(Some(api_key))
            })
            .map_err(|e| tx_err("revoking an api key", e))
    }
}
