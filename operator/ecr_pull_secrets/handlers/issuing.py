"""Tokens for a resource: its credential chain resolved against the cluster, tokens from the broker
(or read back from the resource's own Secret), and what its Secrets hold now."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from ecr_pull_secrets.aws.broker import TokenBroker, TokenKey
from ecr_pull_secrets.handlers.cache import ClusterCache
from ecr_pull_secrets.kube.client import KubeError
from ecr_pull_secrets.kube.secrets import Secrets
from ecr_pull_secrets.kube.serviceaccounts import ServiceAccounts
from ecr_pull_secrets.model import api
from ecr_pull_secrets.model.credential import Credential, RegistryToken
from ecr_pull_secrets.model.identity import OPERATOR_CHAIN, Chain, StaticKeys, WebIdentity, session_tags
from ecr_pull_secrets.model.registry import TokenGroup
from ecr_pull_secrets.model.resource import Resource, Spec
from ecr_pull_secrets.plan import content, renewal
from ecr_pull_secrets.plan.renewal import RenewalPolicy, Trigger


@dataclass(frozen=True)
class Held:
    """The tokens a resource's Secrets hold now: lets a deleted or edited Secret, or a new
    namespace, be served without asking AWS again. A cache only; after a restart it is empty."""

    credentials: Mapping[str, Credential]
    issued_at: datetime
    expires_at: datetime
    chain_key: str
    identity: str


class AuthUnresolved(Exception):
    """spec.auth names a ServiceAccount or Secret that is missing or unusable (yet)."""


class Issuer:
    def __init__(
        self,
        *,
        broker: TokenBroker,
        secrets: Secrets,
        service_accounts: ServiceAccounts,
        cache: ClusterCache,
        policy: RenewalPolicy,
        clock: Callable[[], datetime],
        waiting_for_aws: Callable[[], None] = lambda: None,
    ) -> None:
        """`waiting_for_aws`: said before a pass waits for a token no one holds (the work queue
        then lets its consumer go on with other resources)."""
        self._broker = broker
        self._waiting_for_aws = waiting_for_aws
        self._secrets = secrets
        self._service_accounts = service_accounts
        self._cache = cache
        self._policy = policy
        self._clock = clock
        self._held: dict[str, Held] = {}
        self._owners: dict[str, tuple[str, str]] = {}
        """uid -> (namespace, name) of resources holding a credential chain in the broker."""

    def held(self, uid: str) -> Held | None:
        return self._held.get(uid)

    def release(self, uid: str) -> None:
        """The resource uses no credential chain any more: it leaves its namespace's quota."""
        owner = self._owners.pop(uid, None)
        if owner is not None:
            self._broker.release(owner)

    def forget(self, uid: str) -> None:
        self.release(uid)
        self._held.pop(uid, None)

    def current(self, resource: Resource) -> Held | None:
        held = self._held.get(resource.uid)
        if held is None or held.expires_at != resource.status.expires_at or held.expires_at <= self._clock():
            return None
        return held

    async def issue(self, resource: Resource, trigger: Trigger, now: datetime) -> Held:
        spec = resource.spec
        chain = await self._chain(resource)
        owner = (resource.namespace, resource.name)
        self._owners[resource.uid] = owner

        def accept(token: RegistryToken) -> bool:
            return renewal.acceptable(token, now, spec.renew_before, self._policy)

        reusable = await self._reusable(resource, chain, accept, forced=trigger is Trigger.FORCED)
        groups = sorted(spec.token_groups)
        if trigger is Trigger.FORCED or any(
            self._broker.cached(_token_key(chain, spec, g), accept) is None
            and not any(
                r.token_group == g and (kept := reusable.get(r.host)) is not None and accept(kept)
                for r in spec.registries
            )
            for g in groups
        ):
            self._waiting_for_aws()
        # The identity (asked once per chain) alongside the tokens, not after them: after a restart
        # each chain needs both, and a due Secret should wait for one AWS round trip, not two. When
        # the tokens fail, theirs is the error the resource shows, and the identity call is
        # cancelled unless it already holds its turn at the rate limit.
        calls = asyncio.gather(
            *(
                self._token(
                    chain,
                    spec=spec,
                    group=g,
                    reusable=reusable,
                    accept=accept,
                    owner=owner,
                    trigger=trigger,
                )
                for g in groups
            )
        )
        identity = asyncio.ensure_future(self._broker.identity(chain, spec.partition, owner))
        try:
            fetched = await calls
        except BaseException:
            identity.cancel()
            identity.add_done_callback(_retrieved)
            raise
        tokens = dict(zip(groups, fetched, strict=True))
        held = Held(
            credentials={r.host: tokens[r.token_group].credential for r in spec.registries},
            issued_at=min(t.issued_at for t in tokens.values()),
            # Whole seconds, as status and the Secret's annotation record it.
            expires_at=min(t.expires_at for t in tokens.values()).replace(microsecond=0),
            chain_key=chain.key,
            identity=await identity,
        )
        self._held[resource.uid] = held
        return held

    async def _reusable(
        self, resource: Resource, chain: Chain, accept: Callable[[RegistryToken], bool], *, forced: bool
    ) -> dict[str, RegistryToken]:
        """A namespaced resource may reuse what its own Secret holds (after a restart, say), read
        only when the broker holds no token it would take. The tokens serve that resource alone,
        never the broker: a Secret's content is writable by its namespace. A cluster resource never
        trusts a Secret in a tenant's namespace as a source for the others."""
        spec = resource.spec
        if spec.scope is not None or forced:
            return {}
        mine = self._cache.secret(resource.namespace, spec.secret_name)
        if (
            mine is None
            or mine.controller_uid != resource.uid
            or not mine.content_ok
            or mine.annotations.get(api.CHAIN_ANNOTATION) != chain.key
        ):
            return {}
        if all(self._broker.cached(_token_key(chain, spec, g), accept) for g in spec.token_groups):
            return {}
        secret = await asyncio.to_thread(self._secrets.get, resource.namespace, spec.secret_name)
        if secret is None or not content.is_controlled_by(secret.metadata, resource.uid):
            return {}
        return content.tokens_in(secret.metadata, secret.data, chain.key, secret.type)

    async def _token(
        self,
        chain: Chain,
        *,
        spec: Spec,
        group: TokenGroup,
        reusable: dict[str, RegistryToken],
        accept: Callable[[RegistryToken], bool],
        owner: tuple[str, str],
        trigger: Trigger,
    ) -> RegistryToken:
        key = _token_key(chain, spec, group)
        forced = trigger is Trigger.FORCED
        if not forced and self._broker.cached(key, accept) is None:
            for registry in spec.registries:
                held = reusable.get(registry.host)
                if registry.token_group == group and held and accept(held):
                    return held
        return await self._broker.token(chain, key, accept, owner=owner, fresh=forced)

    async def _chain(self, resource: Resource) -> Chain:
        """Resolve spec.auth's references against the cluster into a credential chain."""
        auth = resource.spec.auth
        start: StaticKeys | WebIdentity | None = None
        if auth.service_account is not None:
            ref = auth.service_account
            namespace = ref.namespace or resource.namespace
            role = ref.role_arn
            if role is None:
                try:
                    role = await asyncio.to_thread(self._service_accounts.role_arn, namespace, ref.name)
                except KubeError as error:
                    raise AuthUnresolved(f"ServiceAccount {namespace}/{ref.name}: {error}") from None
                if role is None:
                    raise AuthUnresolved(
                        f"ServiceAccount {ref.name} has no eks.amazonaws.com/role-arn annotation and "
                        "spec.auth.serviceAccountRef.roleArn is not set"
                    )
            start = WebIdentity(namespace, ref.name, ref.audience, role)
        elif auth.secret is not None:
            start = await self._static_keys(resource)
        if start is None and not auth.role_chain:
            return OPERATOR_CHAIN
        return Chain(
            start=start or OPERATOR_CHAIN.start,
            hops=auth.role_chain,
            tags=session_tags(resource.namespace, resource.name) if auth.role_chain else (),
        )

    async def _static_keys(self, resource: Resource) -> StaticKeys:
        ref = resource.spec.auth.secret
        assert ref is not None
        namespace = ref.namespace or resource.namespace
        secret = await asyncio.to_thread(self._secrets.get, namespace, ref.name)
        if secret is None:
            raise AuthUnresolved(f"Secret {ref.name} named in spec.auth.secretRef does not exist")
        values = {
            key: _decoded(secret.data, key) for key in (ref.access_key_id_key, ref.secret_access_key_key)
        }
        access_key, secret_key = values[ref.access_key_id_key], values[ref.secret_access_key_key]
        if not access_key or not secret_key:
            raise AuthUnresolved(
                f"Secret {ref.name} lacks {ref.access_key_id_key} or {ref.secret_access_key_key} "
                "(base64 of UTF-8 text)"
            )
        meta = secret.metadata
        return StaticKeys(
            namespace=namespace,
            secret=ref.name,
            version=f"{meta.get('uid')}:{meta.get('resourceVersion')}",
            access_key_id=access_key,
            secret_access_key=secret_key,
            session_token=_decoded(secret.data, ref.session_token_key) or None,
        )


def _retrieved(task: asyncio.Future[str]) -> None:
    """Its outcome is not wanted: retrieved, so that asyncio does not warn of it."""
    if not task.cancelled():
        task.exception()


def _token_key(chain: Chain, spec: Spec, group: TokenGroup) -> TokenKey:
    region, public, fips = group
    return TokenKey(chain.key, spec.partition, region, public, fips)


def _decoded(data: Mapping[str, str], key: str) -> str | None:
    """One value of a Secret as text; None when missing or not base64 of UTF-8 (the error would
    quote the data, so it is dropped)."""
    try:
        return base64.b64decode(data[key], validate=True).decode()
    except (KeyError, ValueError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
