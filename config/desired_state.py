"""The desired-state file: what the tenant's external collaboration should look like.

YAML on disk, camelCase keys (mirroring Graph where a block maps onto a Graph resource), validated by
these models; ``config/schemas/desired-state.schema.json`` is generated from them for editors.
Unknown keys are refused, so a typo never silently means "not configured".
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from config.errors import DesiredStateError
from config.keys import KEY, bad_keys
from config.lifecycle_policies import GuestLifecyclePolicies

DOMAIN_PATTERN = r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
_DOMAIN_NAME = re.compile(DOMAIN_PATTERN.removesuffix("$") + r"\Z")


def normalise_domain(value: object, *, root_dot: bool = False) -> str | None:
    """The one normalisation of a domain name, for tickets, sign-up and the desired state alike: ASCII
    lower-cased, else None.

    Non-ASCII is refused rather than folded: the Kelvin sign (U+212A) lower-cases to "k" and fullwidth
    letters fold under NFKC, so a lookalike would become a partner's domain (IDNs are written as their
    xn-- form). Whitespace and control characters anywhere are refused, not stripped, so ``gmail.com\n``
    cannot slip past a blocklist that holds ``gmail.com``. ``root_dot`` accepts one trailing dot (the
    absolute form of a name) and drops it.
    """
    if not isinstance(value, str) or not value.isascii():
        return None
    domain = value.lower()
    if root_dot and domain.endswith("."):
        domain = domain[:-1]
    return domain if _DOMAIN_NAME.match(domain) else None


def _domains(value: tuple[str, ...]) -> tuple[str, ...]:
    """Every domain of a desired-state list, normalised; a bad one is refused with its spelling shown."""
    normalised = [normalise_domain(d) for d in value]
    bad = [repr(d) for d, n in zip(value, normalised, strict=True) if n is None]
    if bad:
        raise ValueError(f"not a domain name (ASCII, lower-case or not, no spaces): {', '.join(bad)}")
    return tuple(n for n in normalised if n is not None)


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Target(Model):
    target: str
    target_type: Literal["user", "group", "application"]


class TargetConfiguration(Model):
    access_type: Literal["allowed", "blocked"]
    targets: tuple[Target, ...]


class B2BSetting(Model):
    users_and_groups: TargetConfiguration | None = None
    applications: TargetConfiguration | None = None


class InboundTrust(Model):
    is_mfa_accepted: bool = False
    is_compliant_device_accepted: bool = False
    is_hybrid_azure_ad_joined_device_accepted: bool = Field(False, alias="isHybridAzureADJoinedDeviceAccepted")


class CrossTenantBlocks(Model):
    """The blocks a cross-tenant access policy has. ``None`` on a partner means: inherit the default."""

    b2b_collaboration_inbound: B2BSetting | None = Field(None, alias="b2bCollaborationInbound")
    b2b_collaboration_outbound: B2BSetting | None = Field(None, alias="b2bCollaborationOutbound")
    b2b_direct_connect_inbound: B2BSetting | None = Field(None, alias="b2bDirectConnectInbound")
    b2b_direct_connect_outbound: B2BSetting | None = Field(None, alias="b2bDirectConnectOutbound")
    inbound_trust: InboundTrust | None = None
    # Which external tenants our users may sign in to (tenant restrictions v2): the outbound lockdown.
    tenant_restrictions: B2BSetting | None = None


class DomainList(Model):
    mode: Literal["allowlist", "blocklist", "none"] = "none"
    domains: tuple[str, ...] = ()

    @field_validator("domains")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _domains(value)


class InvitationPolicy(Model):
    allow_invites_from: Literal["none", "adminsAndGuestInviters", "adminsGuestInvitersAndAllMembers", "everyone"] = (
        "adminsAndGuestInviters"
    )
    guest_user_role: Literal["user", "guestUser", "restrictedGuestUser"] = "restrictedGuestUser"
    # The deployment's identity holds the Guest Inviter directory role (infra/grant-graph-permissions assigns
    # it). Without it, adminsAndGuestInviters may refuse the product's own app-only invitations.
    app_holds_guest_inviter: bool = False
    domains: DomainList = DomainList()
    redirect_url_allowlist: tuple[str, ...] = ("https://myapps.microsoft.com",)
    default_redirect_url: str = "https://myapps.microsoft.com"

    @model_validator(mode="after")
    def _default_redirect_is_allowed(self) -> InvitationPolicy:
        if not any(self.default_redirect_url.startswith(p) for p in self.redirect_url_allowlist):
            raise ValueError("defaultRedirectUrl must be on redirectUrlAllowlist")
        return self


class DeletionBrake(Model):
    max_count: int = Field(50, ge=0)
    max_percent: float = Field(5.0, ge=0, le=100)


QUEUE_NAME_PATTERN = r"^[a-z0-9]+(-[a-z0-9]+)*$"  # valid for Storage queues and Service Bus alike


class SponsorNotice(Model):
    """Tell the guest's sponsor before the sweep disables it: an event on a queue the ticketing system reads."""

    enabled: bool = False
    # The notice goes out this many days before the due date; the disable waits until it is this old.
    lead_days: int = Field(14, ge=1, le=90)
    # A logical queue name (the deployment prefix is added), valid for Service Bus and Storage queues.
    queue: str = Field("sponsor-notices", pattern=QUEUE_NAME_PATTERN, min_length=3, max_length=50)


class SponsorNoticeOverride(Model):
    enabled: bool | None = None
    lead_days: int | None = Field(None, ge=1, le=90)
    queue: str | None = Field(None, pattern=QUEUE_NAME_PATTERN, min_length=3, max_length=50)


class LifecycleRules(Model):
    inactive_days: int | None = Field(90, ge=1)
    pending_invitation_days: int | None = Field(30, ge=1)
    grace_days: int = Field(30, ge=0)
    # Periodic attestation: a guest this product onboarded is due once this many days pass without a sponsor's
    # attestation (attest ticket), counted from the last one or from its invitation. Off (null) by default.
    attestation_days: int | None = Field(None, ge=1)
    # Sponsor gone: a guest whose sponsors are all deleted, disabled or no longer members gets a sponsor-reassign
    # event; if nobody acts within this many days of the sweep first seeing it so, the guest is disabled. Off (null)
    # by default; it needs the sweep's sponsor coverage (sponsors expanded in the guest pages).
    sponsor_gone_days: int | None = Field(None, ge=1)
    sponsor_notice: SponsorNotice = SponsorNotice()
    deletion_brake: DeletionBrake = DeletionBrake()
    # What the nightly sweep does unattended: plan only (the safe default) or plan and enforce.
    scheduled_mode: Literal["plan", "enforce"] = "plan"


class RedemptionReset(Model):
    """Redemption reset after a partner changes identity provider."""

    # A detection run that would reset more guests than this waits for an operator's approval.
    brake_count: int = Field(25, ge=0)
    # A guest reset within this many hours is not sent a second invitation (replays, duplicates).
    reinvite_window_hours: int = Field(72, ge=1, le=24 * 30)
    send_invitation_message: bool = True


GUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class PartnerRules(Model):
    inactive_days: int | None = Field(None, ge=1)
    pending_invitation_days: int | None = Field(None, ge=1)
    grace_days: int | None = Field(None, ge=0)
    attestation_days: int | None = Field(None, ge=1)
    sponsor_gone_days: int | None = Field(None, ge=1)
    sponsor_notice: SponsorNoticeOverride | None = None
    opt_out: bool = False


class AccessPackageRef(Model):
    catalog: str
    name: str


class DirectFederation(Model):
    """SAML/WS-Fed federation with the partner's own identity provider, for domains no Entra tenant verifies."""

    issuer_uri: str
    passive_sign_in_uri: str
    preferred_authentication_protocol: Literal["saml", "wsFed"]
    signing_certificate: str = Field(min_length=1)
    metadata_exchange_uri: str | None = None
    # Defaults to the partner's domains.
    domains: tuple[str, ...] = ()


class Partner(Model):
    display_name: str
    tenant_id: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    domains: tuple[str, ...] = Field(min_length=1)
    max_engagement_days: int = Field(365, ge=1, le=3650)
    tier: str | None = None
    access_package: AccessPackageRef | None = None
    cross_tenant_access: CrossTenantBlocks = CrossTenantBlocks()
    # The partner's MFA is not trusted here (e.g. SMS only): trusting its MFA claim is refused.
    weak_mfa: bool = Field(False, alias="weakMfa")
    federation: DirectFederation | None = None
    lifecycle: PartnerRules = PartnerRules()
    # The object id of a member of this tenant who answers for the partner's guests: proposed as the new sponsor
    # of a guest whose sponsors are all gone, when the departed sponsor's manager is not known.
    owner: str | None = Field(None, pattern=GUID_PATTERN)

    @field_validator("owner")
    @classmethod
    def _owner_in_lower_case(cls, value: str | None) -> str | None:
        return value.lower() if value else None

    @field_validator("domains")
    @classmethod
    def _valid_domains(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _domains(value)

    @property
    def max_engagement(self) -> timedelta:
        """How far ahead of today a guest of this partner may be given an end date."""
        return timedelta(days=self.max_engagement_days)


class Exclusions(Model):
    """Objects no job ever touches. Ids are GUIDs, kept in lower case: Graph answers ids in lower case, and
    a comparison that one job folds and another does not would exclude a guest from one and not the other."""

    protected_group_id: str | None = None
    object_ids: tuple[str, ...] = ()

    @field_validator("protected_group_id")
    @classmethod
    def _group_is_a_guid(cls, value: str | None) -> str | None:
        import re

        if value is None:
            return None
        if not re.match(GUID_PATTERN, value.strip()):
            raise ValueError(f"not an object id (GUID): {value!r}")
        return value.strip().lower()

    @field_validator("object_ids")
    @classmethod
    def _ids_are_guids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        import re

        bad = [v for v in value if not re.match(GUID_PATTERN, v.strip())]
        if bad:
            raise ValueError(f"not object ids (GUIDs): {', '.join(repr(v) for v in bad)}")
        return tuple(dict.fromkeys(v.strip().lower() for v in value))


class Safety(Model):
    """What tickets may do beyond the ticket contract. Off by default: a ticketing system names guests, and
    without this it can only name guests this product onboarded."""

    tickets_may_act_on_unmanaged_guests: bool = False


class SignUpPolicy(Model):
    """Rules for self-service sign-up (the API connector). Partner domains come from ``partners``.

    Invitation codes are derived per partner from a secret held in app settings (never in this file),
    so the connector can check them without a Graph call; bumping ``invitationCodeGeneration`` revokes
    every code handed out before.
    """

    unknown_domains: Literal["allow", "block"] = "block"
    blocked_domains: tuple[str, ...] = ()
    block_disposable_domains: bool = True
    # Attribute names as user flows send them: built-in (``city``) or ``extension_<appId>_<Name>``.
    partner_tier_attribute: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,255}$")
    require_invitation_code: bool = False
    invitation_code_attribute: str | None = Field(None, pattern=r"^[A-Za-z][A-Za-z0-9_]{0,255}$")
    invitation_code_generation: int = Field(1, ge=1, le=9999)

    @field_validator("blocked_domains")
    @classmethod
    def _lower(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return _domains(value)

    @model_validator(mode="after")
    def _code_attribute_when_required(self) -> SignUpPolicy:
        if self.require_invitation_code and not self.invitation_code_attribute:
            raise ValueError("requireInvitationCode needs invitationCodeAttribute (the attribute users type it in)")
        return self


class SignUpRegistration(Model):
    """The sign-up connector's registration in Entra: an API connector calling this product's sign-up endpoint
    with HTTP Basic, attached to the self-service sign-up user flows it serves. Present: policy drift plans and
    applies it (and the deployment needs APIConnectors.ReadWrite.All and IdentityUserFlow.ReadWrite.All).

    The password is never in this file: the drift job reads it from LIFECYCLE_SIGNUP_CONNECTOR_PASSWORD, a Key
    Vault reference in Azure, the same secret the sign-up app checks as LIFECYCLE_SIGNUP_BASIC_PASSWORD.
    """

    display_name: str = Field("Partner self-service sign-up", min_length=1, max_length=256)
    target_url: str = Field(pattern=r"^\S+$", max_length=2048)
    username: str = Field(min_length=1, max_length=256, pattern=r"^[^:\s]+$")
    # User flow ids as Graph names them (B2X_1_...).
    user_flows: tuple[str, ...] = Field((), max_length=50)
    steps: tuple[Literal["postFederationSignup", "postAttributeCollection"], ...] = ("postAttributeCollection",)

    @field_validator("user_flows")
    @classmethod
    def _flow_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [flow for flow in value if not flow.startswith("B2X_1_")]
        if bad:
            raise ValueError(f"userFlows take user flow ids as Graph names them (B2X_1_...): {', '.join(bad)}")
        return tuple(dict.fromkeys(value))


_OBJECT_ID = r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$"


class ManagedGuestPolicy(Model):
    """One guest Conditional Access policy the product writes. It is created report-only; ``enabled`` is the
    goal, reached only when an operator approves the switch (apply policies --approve-enable KEY)."""

    display_name: str = Field(min_length=1, max_length=256)
    enabled: bool = False


class GuestConditionalAccess(Model):
    """Opt-in: the guest Conditional Access policies as desired state (Policy.ReadWrite.ConditionalAccess).

    Each policy covers B2B collaboration guests and members on all applications and excludes the break-glass
    accounts and groups, which the guardrails require. ``evidenceDays`` of sign-in logs show what a report-only
    policy would have done."""

    break_glass_user_ids: tuple[str, ...] = ()
    break_glass_group_ids: tuple[str, ...] = ()
    evidence_days: int = Field(7, ge=1, le=30)
    require_mfa: ManagedGuestPolicy | None = ManagedGuestPolicy(display_name="Guests: require MFA")
    block_legacy_authentication: ManagedGuestPolicy | None = ManagedGuestPolicy(
        display_name="Guests: block legacy authentication"
    )

    @field_validator("break_glass_user_ids", "break_glass_group_ids")
    @classmethod
    def _object_ids(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        bad = [v for v in value if not re.match(_OBJECT_ID, v)]
        if bad:
            raise ValueError(f"break-glass exclusions take object ids: {', '.join(bad)}")
        return tuple(dict.fromkeys(v.lower() for v in value))


class GoogleFederation(Model):
    """Google federation for guests with consumer addresses. The client secret is never in this file: the drift
    job reads it from LIFECYCLE_GOOGLE_CLIENT_SECRET, a Key Vault reference in Azure."""

    client_id: str = Field(min_length=1, max_length=256, pattern=r"^\S+$")
    display_name: str = Field("Google", min_length=1, max_length=256)


class RedemptionOrder(Model):
    """The default cross-tenant policy's invitationRedemptionIdentityProviderConfiguration."""

    primary: tuple[Literal["azureActiveDirectory", "externalFederation", "socialIdentityProviders"], ...] = (
        "azureActiveDirectory",
        "externalFederation",
        "socialIdentityProviders",
    )
    fallback: Literal["defaultConfiguredIdp", "emailOneTimePasscode", "microsoftAccount"] = "defaultConfiguredIdp"

    @field_validator("primary")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(value)) != len(value):
            raise ValueError("each primary identity provider appears once")
        return value


class GuestIdentityProviders(Model):
    """Opt-in: how guests authenticate. ``emailOneTimePasscode`` is allowExternalIdToUseEmailOtp; ``google`` an
    object federates Google, ``false`` removes the federation, absent leaves it alone; ``redemptionOrder`` absent
    leaves the tenant's order alone."""

    email_one_time_passcode: Literal["enabled", "disabled"] | None = "enabled"
    google: GoogleFederation | Literal[False] | None = None
    redemption_order: RedemptionOrder | None = None


class ConditionalAccessPosture(Model):
    """What the guest Conditional Access policies must do. Checked and reported; never written."""

    require_guest_mfa: bool = True
    # An authentication strength (id or display name) that satisfies the MFA requirement instead of plain MFA.
    authentication_strength: str | None = None
    block_legacy_authentication: bool = True


class Reviewer(Model):
    """Who reviews: a user or group by id, the reviewed group's owners, each guest's sponsors or manager."""

    kind: Literal["user", "group", "groupOwners", "sponsors", "manager"]
    id: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")

    @model_validator(mode="after")
    def _id_when_needed(self) -> Reviewer:
        if (self.kind in ("user", "group")) != (self.id is not None):
            raise ValueError("'id' is required for kind user or group, and only for them")
        return self


class ReviewSettings(Model):
    """A recurring access review (accessReviewScheduleDefinition) of guests."""

    display_name: str = Field(min_length=1, max_length=256)
    description_for_reviewers: str = Field("Confirm that each guest still needs access.", max_length=256)
    recurrence: Literal["weekly", "absoluteMonthly"] = "absoluteMonthly"
    interval: int = Field(3, ge=1, le=12)
    start_date: date
    instance_duration_days: int = Field(14, ge=1, le=180)
    reviewers: tuple[Reviewer, ...] = ()
    fallback_reviewers: tuple[Reviewer, ...] = ()
    auto_apply: bool = True
    default_decision: Literal["Approve", "Deny", "Recommendation", "None"] = "Deny"
    # removeAccess takes the guest out of what was reviewed; disableAndDelete blocks sign-in, then deletes.
    apply_action: Literal["removeAccess", "disableAndDelete"] = "removeAccess"
    recommendations: bool = True
    justification_required: bool = True


class Expiration(Model):
    days: int | None = Field(None, ge=1, le=3650)
    end_date: date | None = None

    @model_validator(mode="after")
    def _one_of(self) -> Expiration:
        if (self.days is None) == (self.end_date is None):
            raise ValueError("give exactly one of 'days' or 'endDate'")
        return self


class PartnerGovernance(Model):
    """Entitlement management and review settings for one partner (keyed like ``partners``)."""

    connected_organization: bool = True
    connected_organization_state: Literal["configured", "proposed"] = "configured"
    review_group_id: str | None = Field(None, pattern=r"^[0-9a-fA-F-]{36}$")
    request_policy: bool = True
    approval_by_sponsor: bool = True
    fallback_approvers: tuple[str, ...] = ()  # user object ids
    expiration: Expiration = Expiration(days=90)
    # Object ids of the groups whose Member role the partner's access package grants. Ids, not display
    # names: they survive a rename and are unique. Unset: the package's resource roles are left alone;
    # set (even to []): roles the package grants beyond these are drift.
    group_memberships: tuple[str, ...] | None = None

    @field_validator("group_memberships")
    @classmethod
    def _group_ids(cls, value: tuple[str, ...] | None) -> tuple[str, ...] | None:
        import re

        if value is None:
            return None
        bad = [g for g in value if not re.match(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$", g)]
        if bad:
            raise ValueError(f"groupMemberships takes group object ids: {', '.join(bad)}")
        return tuple(dict.fromkeys(g.lower() for g in value))


class ExternalUserLifecycle(Model):
    """What entitlement management does to an external user whose last assignment ends."""

    action: Literal["none", "blockSignIn", "blockSignInAndDelete"] = "blockSignInAndDelete"
    delete_after_days: int = Field(30, ge=1, le=365)


class CatalogSettings(Model):
    display_name: str = "Partner collaboration"
    description: str = "Access packages for partner organisations' guests."
    externally_visible: bool = True


class Governance(Model):
    """Access reviews and entitlement management the daily governance job keeps in place."""

    scheduled_mode: Literal["plan", "enforce"] = "plan"
    guest_review: ReviewSettings | None = None
    partner_review: ReviewSettings | None = None  # per partner with a reviewGroupId; name gets the partner's
    catalog: CatalogSettings = CatalogSettings()
    external_user_lifecycle: ExternalUserLifecycle = ExternalUserLifecycle()
    partners: dict[str, PartnerGovernance] = Field(default_factory=dict)


WAIVER_B2B_BLOCKS = (
    "b2bCollaborationInbound",
    "b2bCollaborationOutbound",
    "b2bDirectConnectInbound",
    "b2bDirectConnectOutbound",
    "tenantRestrictions",
)
WAIVER_TRUST_FIELDS = ("isMfaAccepted", "isCompliantDeviceAccepted", "isHybridAzureADJoinedDeviceAccepted")
# The fields a waiver may name: the field paths the drift plan shows for a cross-tenant access policy.
WAIVABLE_FIELDS = (
    *(f"{block}.{part}" for block in WAIVER_B2B_BLOCKS for part in ("usersAndGroups", "applications")),
    *(f"inboundTrust.{name}" for name in WAIVER_TRUST_FIELDS),
)
WAIVER_TARGET_PATTERN = rf"^(default|partners\.{KEY})$"


class Waiver(Model):
    """A deviation accepted on purpose: until ``expires`` (its last day, UTC) the named field of the default or a
    partner policy is held to ``value`` instead of what the file says. The plan shows it with its owner and expiry
    every time; once expired it is itself drift. Guardrails judge the waived value like any other."""

    target: str = Field(pattern=WAIVER_TARGET_PATTERN, description="default, or partners.<partner key>")
    field: Literal[WAIVABLE_FIELDS]  # type: ignore[valid-type]
    # A trust flag takes a boolean; a B2B or tenant-restrictions sub-setting takes {accessType, targets}.
    value: StrictBool | TargetConfiguration
    owner: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=1, max_length=1024)
    expires: date

    @model_validator(mode="after")
    def _value_fits_the_field(self) -> Waiver:
        if self.field.startswith("inboundTrust.") != isinstance(self.value, bool):
            kind = "true or false" if self.field.startswith("inboundTrust.") else "{accessType, targets}"
            raise ValueError(f"a waiver of {self.field} takes {kind}")
        return self

    @property
    def partner(self) -> str | None:
        return self.target.split(".", 1)[1] if self.target.startswith("partners.") else None

    def value_json(self) -> object:
        """The waived value as Graph spells it."""
        return self.value if isinstance(self.value, bool) else self.value.model_dump(by_alias=True, mode="json")


class TenantInfo(Model):
    id: str = Field(pattern=r"^[0-9a-fA-F-]{36}$")
    primary_domain: str


class DesiredState(Model):
    schema_version: Literal[1] = 1
    tenant: TenantInfo
    invitations: InvitationPolicy = InvitationPolicy()
    cross_tenant_access_default: CrossTenantBlocks = CrossTenantBlocks()
    partners: dict[str, Partner] = Field(default_factory=dict)
    lifecycle: LifecycleRules = LifecycleRules()
    redemption_reset: RedemptionReset = RedemptionReset()
    exclusions: Exclusions = Exclusions()
    safety: Safety = Safety()
    sign_up: SignUpPolicy = SignUpPolicy()
    conditional_access: ConditionalAccessPosture = ConditionalAccessPosture()
    governance: Governance = Governance()
    sign_up_registration: SignUpRegistration | None = None
    guest_conditional_access: GuestConditionalAccess | None = None
    guest_identity_providers: GuestIdentityProviders | None = None
    guest_lifecycle_policies: GuestLifecyclePolicies | None = None
    waivers: tuple[Waiver, ...] = ()

    @field_validator("partners")
    @classmethod
    def _partner_keys(cls, value: dict[str, Partner]) -> dict[str, Partner]:
        bad = bad_keys(value)
        if bad:
            raise ValueError(f"partner keys must be lowercase slugs: {', '.join(bad)}")
        return value

    @model_validator(mode="after")
    def _governance_names_known_partners(self) -> DesiredState:
        unknown = sorted(set(self.governance.partners) - set(self.partners))
        if unknown:
            raise ValueError(f"governance.partners names unknown partners: {', '.join(unknown)}")
        return self

    @model_validator(mode="after")
    def _waivers_name_known_settings(self) -> DesiredState:
        seen: set[tuple[str, str]] = set()
        for waiver in self.waivers:
            if waiver.partner is not None and waiver.partner not in self.partners:
                raise ValueError(f"waivers: {waiver.target} names an unknown partner")
            if waiver.partner is not None and not self.partners[waiver.partner].tenant_id:
                raise ValueError(f"waivers: {waiver.target} has no tenantId, so it has no partner policy to waive")
            if (
                waiver.target == "default"
                and waiver.field.startswith("tenantRestrictions.")
                and self.cross_tenant_access_default.tenant_restrictions is None
            ):
                raise ValueError(
                    "waivers: the file leaves the default's tenantRestrictions unmanaged, so there is nothing to waive"
                )
            if (waiver.target, waiver.field) in seen:
                raise ValueError(f"waivers: {waiver.target} {waiver.field} is waived twice")
            seen.add((waiver.target, waiver.field))
        return self

    def partner_for_domain(self, domain: str) -> tuple[str, Partner] | None:
        normalised = normalise_domain(domain)
        if normalised is None:
            return None
        domain = normalised
        for key, partner in self.partners.items():
            if domain in partner.domains:
                return key, partner
        return None


class _StrictLoader(yaml.SafeLoader):
    """safe_load that refuses a key given twice (PyYAML keeps the last one silently: graceDays 30, then 0) and
    refuses aliases (``*name``): nine anchors aliasing each other nine times expand to 9**9 values once
    anything walks them, and a merge key pulling in an alias hides where a value came from. A merge key with
    its mapping written in place (``<<: {...}``) still works."""

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"aliases are not allowed in the desired-state file (found *{event.anchor}); write the value out",
                event.start_mark,
            )
        return super().compose_node(parent, index)  # type: ignore[no-any-return]

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: set[object] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # "<<" keys may be overridden by design
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:
                continue  # unhashable: the base class refuses it with its own error
            if repeated:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def load_desired_state(path: Path) -> DesiredState:
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=_StrictLoader)  # a SafeLoader subclass
    except FileNotFoundError:
        raise DesiredStateError(f"desired-state file not found: {path}") from None
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        # ValueError: not UTF-8, or a date such as 2026-13-45 that PyYAML's resolver takes for a timestamp.
        raise DesiredStateError(f"{path}: not valid YAML: {type(exc).__name__}: {exc}") from None
    return parse_desired_state(raw, source=str(path))


def parse_desired_state(raw: object, *, source: str = "desired state") -> DesiredState:
    if not isinstance(raw, dict):
        raise DesiredStateError(f"{source}: the top level must be a mapping")
    try:
        return DesiredState.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{'.'.join(str(p) for p in e['loc']) or '(root)'}: {e['msg']}" for e in exc.errors()]
        raise DesiredStateError(f"{source}: invalid desired state:\n  " + "\n  ".join(lines)) from None
