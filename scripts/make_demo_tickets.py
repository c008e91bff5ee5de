"""Generate the synthetic demo ticket export and its answer key for Runbook Desk.

Why this exists: the desktop app ships with a demo workspace so people can try ticket-to-runbook
matching without connecting a real ServiceNow instance. Real tickets cannot be bundled (personal
data, customer systems), so this script fabricates a ServiceNow-style incident export that reads
like the real thing: vague titles, typos, pasted error codes, e-mail threads, monitoring alerts.
It also writes an answer key (labels.csv) so matching quality can be measured against known
intent: full matches, partial matches, and gap clusters that no runbook covers.

Everything is synthetic: people, hosts, addresses and ticket numbers are invented.
Output is deterministic (fixed seed), uses only the standard library and needs no network.

    python scripts/make_demo_tickets.py

writes resources/demo/tickets.csv and resources/demo/labels.csv.
"""

from __future__ import annotations

import csv
import random
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

SEED = 20261127
ROOT = Path(__file__).resolve().parent.parent
DEMO_DIR = ROOT / "resources" / "demo"
RUNBOOK_DIR = DEMO_DIR / "runbooks"
TICKETS_CSV = DEMO_DIR / "tickets.csv"
LABELS_CSV = DEMO_DIR / "labels.csv"

FIRST_NUMBER = 10001
START = datetime(2026, 6, 1, 0, 0, 0)
END = datetime(2026, 11, 20, 23, 59, 59)

TICKET_HEADER = (
    "number",
    "short_description",
    "description",
    "priority",
    "state",
    "assigned_to",
    "sys_created_on",
    "sys_updated_on",
    "close_notes",
    "category",
    "cmdb_ci",
)
LABEL_HEADER = ("number", "runbook", "match", "gap")

PRIORITIES = ("1 - Critical", "2 - High", "3 - Moderate", "4 - Low", "5 - Planning")
# Weights for PRIORITIES, by kind of work.
PRIO_DESK = (1, 9, 52, 33, 5)
PRIO_SERVER = (5, 24, 51, 18, 2)
PRIO_REQUEST = (0, 3, 40, 47, 10)

STATES = ("New", "In Progress", "On Hold", "Resolved", "Closed")
STATE_WEIGHTS = (9, 18, 12, 13, 48)

TS_FMT = "%Y-%m-%d %H:%M:%S"


@dataclass(frozen=True)
class Topic:
    """One family of tickets that share intent, wording pool and expected label."""

    key: str
    runbook: str  # intended runbook slug; empty for gap tickets
    match: str  # full | partial | none
    count: int
    category: str
    cis: tuple[str, ...]  # cmdb_ci candidates; may contain {placeholders}
    titles: tuple[str, ...]
    bodies: tuple[str, ...]
    notes: tuple[str, ...]
    gap: str = ""
    alerts: tuple[tuple[str, str], ...] = ()  # (title, body) pairs written by monitoring tools
    alert_share: float = 0.0
    fills: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # values derived from the chosen cmdb_ci, e.g. {"room": {"ZR-LON-THAMES": "Thames"}}
    ci_fills: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prio: tuple[int, ...] = PRIO_DESK


# --------------------------------------------------------------------------------------------
# Shared vocabulary (all invented)
# --------------------------------------------------------------------------------------------

FIRST_NAMES = (
    "John",
    "Priya",
    "Mohammed",
    "Sarah",
    "Tomasz",
    "Aisha",
    "Liam",
    "Chloé",
    "Kenji",
    "Fatima",
    "Oliver",
    "Sofia",
    "Daniel",
    "Grace",
    "Ravi",
    "Emma",
    "Lukas",
    "Zoë",
    "Ahmed",
    "Hannah",
    "Mateo",
    "Olga",
    "Chinedu",
    "Isabel",
    "Patrick",
    "Mei",
    "Ben",
    "Ana",
    "Jürgen",
    "Niamh",
    "Samira",
    "George",
    "Lena",
    "Kofi",
    "Ruth",
    "Dmitri",
)
LAST_NAMES = (
    "Smith",
    "Patel",
    "Khan",
    "O'Brien",
    "Nowak",
    "Okafor",
    "Murphy",
    "Dubois",
    "Tanaka",
    "Hussain",
    "Jones",
    "García",
    "Fischer",
    "Walsh",
    "Sharma",
    "Taylor",
    "Müller",
    "Evans",
    "Ali",
    "Kowalski",
    "Rossi",
    "Ivanova",
    "Nwosu",
    "Santos",
    "Byrne",
    "Chen",
    "Wright",
    "Silva",
    "Becker",
    "Doyle",
    "Haddad",
    "Lindqvist",
    "Mensah",
    "Price",
)
ENGINEERS = (
    "Dave Richardson",
    "Anna Kowalczyk",
    "Marcus Bell",
    "Sunita Rao",
    "Tom Fletcher",
    "Leah Goldberg",
    "Kwame Mensah",
    "Inês Ferreira",
    "Gareth Hughes",
    "Yuki Sato",
    "Rebecca Stone",
    "Arjun Mehta",
    "Carla Jensen",
    "Pete Lawson",
)
SITES = (
    "London HQ",
    "Manchester office",
    "Leeds office",
    "Building B",
    "Dublin office",
    "Reading site",
    "warehouse office",
    "Glasgow office",
)
FLOORS = ("3rd floor", "2nd floor", "ground floor", "5th floor", "east wing", "4th floor")
DEPTS = ("Finance", "Sales", "HR", "Marketing", "Operations", "Legal", "Procurement", "Customer Service")
APPS = ("the order portal", "CRM", "the billing app", "the HR portal", "the warehouse system", "Jira")
SERVERS = ("WIN-APP-05", "WIN-TS-02", "WIN-FS-02", "WIN-SQL-03", "lnx-app-03", "lnx-batch-01")
PHONES = ("iPhone 15", "iPhone 13", "Samsung Galaxy S24", "Pixel 8", "iPhone 16 Pro", "Galaxy A54")
WHEN = (
    "this morning",
    "since yesterday",
    "since monday",
    "after lunch",
    "since the weekend",
    "for about an hour",
    "since 9am",
    "all day",
    "since the update",
)
WHEN_SHORT = ("yesterday", "on Friday", "last week", "this morning", "2 days ago")
CITIES = ("Frankfurt", "Madrid", "Chicago", "Glasgow", "Singapore", "Lisbon", "Warsaw")
COUNTRIES = ("India", "the US", "Brazil", "Japan", "South Africa", "the UAE")
FQDNS = (
    "intranet.corp.example.com",
    "jira.corp.example.com",
    "hr.corp.example.com",
    "app01.corp.example.com",
    "portal.corp.example.com",
    "reports.corp.example.com",
)
PROJECTS = ("atlas", "helios", "orion", "nova")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")

# --------------------------------------------------------------------------------------------
# Topics
# --------------------------------------------------------------------------------------------

TOPICS: list[Topic] = []

# ---- Remote access, messaging, identity (full matches) --------------------------------------

TOPICS += [
    Topic(
        key="vpn",
        runbook="vpn-anyconnect-cannot-connect",
        match="full",
        count=6,
        category="Network",
        cis=("vpn-gw-01", "vpn-gw-02", "Cisco AnyConnect"),
        fills={
            "err": (
                "Connection attempt has failed.",
                "The VPN client was unable to setup IP filtering. A VPN connection will not be established.",
                "AnyConnect was not able to establish a connection to the specified secure gateway.",
                "The secure gateway has terminated the VPN connection.",
                "Login failed.",
                "Certificate Validation Failure",
            ),
        },
        titles=(
            "VPN not connecting",
            "cant connect to vpn from home",
            "@err AnyConnect error - {err}",
            "@drop vpn keeps dropping",
            "@hotel Unable to connect to VPN, working from hotel",
            "@gp globalprotect stuck on connecting",
            "VPN down?? cant access anything",
            "Remote access not working - {laptop}",
        ),
        bodies=(
            '@err,ac Since {when} I cannot connect to the VPN. AnyConnect says:\n"{err}"\n'
            "Internet works fine at home, I tried rebooting twice.",
            "vpn wont connect. tried on home wifi and on my phone hotspot, same thing. "
            "need to get on {app} today",
            "@err,ac User {user} reports Cisco AnyConnect fails to connect to vpn.corp.example.com from "
            "{laptop}.\n"
            "Error: {err}\nUser is working remotely, no other access. Called in via phone.",
            "@hotel,err I'm at a hotel in {city} and the VPN just spins then says {err}\n"
            "I accepted the wifi terms page. Colleagues at home can connect ok.",
            "@gp GlobalProtect stays on 'Connecting...' forever then times out. Laptop {laptop}. "
            "Started after the reboot for updates last night.",
            "@drop,err VPN connects for about 10 seconds then disconnects with '{err}'. happens every time. "
            "Can't work like this",
            "@login Getting login failed on the vpn even though my password is right, webmail works fine.",
        ),
        notes=(
            "@ac AnyConnect client was 4.10, gateway minimum is 5.0. Pushed Cisco Secure Client 5.1 via "
            "Software Center, user connected.",
            "@hotel Hotel captive portal had not been accepted in browser. Once accepted VPN connected fine.",
            "netsh winsock reset + ipconfig /flushdns, reboot. VPN connects.",
            "@login User not in GG-VPN-Users after team move. Added, waited 15 min for RADIUS cache, "
            "connected OK.",
            "@ac Restarted vpnagent service, cleared saved gateway list, re-entered vpn.corp.example.com. "
            "Working.",
            "@err,gp Device cert expired -> Certificate Validation Failure. Triggered Intune sync, new cert "
            "issued, "
            "VPN OK.",
            "@drop home router blocking udp/443 (DTLS), TLS fallback works. advised user to update router "
            "firmware",
        ),
    ),
    Topic(
        key="outlook-profile",
        runbook="outlook-profile-corrupt-repair",
        match="full",
        count=6,
        category="Software",
        cis=("Microsoft Outlook", "Exchange Online", "exch-mbx-02"),
        fills={"err": ("0x800CCC0E", "0x8004010F", "0x80040600", "0x800CCC13")},
        titles=(
            "outlook broken again",
            "@load Outlook stuck on loading profile",
            "@pw outlook keeps asking for password",
            "@err Outlook error {err} when sending/receiving",
            "@folders Outlook won't open - 'The set of folders cannot be opened'",
            "outlook not working, webmail fine",
            "@disc Outlook disconnected all morning",
            "@pw password prompt loop in outlook",
        ),
        bodies=(
            "@pw Outlook keeps popping up asking for my password every 5 min. I type it in and it comes "
            "back. "
            "Webmail works fine.",
            "@load Outlook hangs at 'Loading Profile...' and never opens. Tried restarting the laptop "
            "({laptop}) "
            "twice.",
            "@err getting error {err} on send/receive {when}. emails going out from my phone ok",
            "@folders Cannot start Microsoft Outlook. Cannot open the Outlook window. The set of folders "
            "cannot be "
            "opened. The attempt to log on to Microsoft Exchange has failed.\n\nthis is the 3rd time this "
            "month",
            "@disc Status bar just says 'Trying to connect...' then 'Disconnected'. OWA works. "
            "Other people in {site} are fine.",
            "@load outlook broken again!! same as {ref}. it just freezes on processing and i have to kill "
            "it in "
            "task manager",
            "@disc Outlook stopped syncing - new emails show in the browser but not in the desktop app.\n"
            "Connection status shows lots of failed connections.",
        ),
        notes=(
            "Rebuilt Outlook profile via Control Panel > Mail, new OST synced. Old profile kept for a week.",
            "@pw Cleared MicrosoftOffice16_Data creds from Credential Manager, password loop stopped.",
            "@load,folders Disabled faulty COM add-in (old CRM plugin) found via outlook.exe /safe. Outlook "
            "opens "
            "normally.",
            "@load,folders,disc,err OST was 48GB and corrupt. Deleted OST, new profile, cached mode set to "
            "12 months. Fixed.",
            "new profile created, autodiscover ok, user confirmed.",
            "@pw SaRA 'Outlook keeps asking for my password' scenario fixed the prompts.",
        ),
    ),
    Topic(
        key="mailbox-full",
        runbook="outlook-cannot-send-mailbox-full",
        match="full",
        count=5,
        category="Software",
        cis=("Exchange Online", "exch-mbx-01", "exch-mbx-02"),
        fills={"gb": ("49.6", "49.9", "98.7", "50")},
        titles=(
            "mailbox full cant send",
            "Outlook says my mailbox is full",
            "@outbox emails stuck in outbox",
            "@ndr Getting bounce back 554 5.2.2 mailbox full",
            "Can't send emails - size limit",
            "@ndr external customers say emails to me bounce",
        ),
        bodies=(
            "Outlook shows a yellow banner 'Your mailbox is full. You might not be able to send or receive "
            "items.' I've deleted some stuff already.",
            "@outbox My emails are just sitting in the outbox. Error says the message could not be sent "
            "because my "
            "mailbox has exceeded its size limit.",
            "@ndr Customer forwarded me the NDR:\n\n  Remote Server returned '554 5.2.2 mailbox full; "
            "STOREDRV.Deliver.Exception:QuotaExceededException.MapiExceptionShutoffQuotaExceeded'\n\n"
            "Can you increase my mailbox?",
            "hi, can my mailbox size be increased? it's at {gb} GB and won't let me send anything",
            "I get a message every morning that my mailbox is almost full and now I can't send. "
            "I need to keep all the project emails for audit.",
            "{user} ({dept}) cannot send mail, mailbox at quota. Needs urgent fix, month end close.",
        ),
        notes=(
            "Mailbox 49.8GB of 50GB (E1). Enabled online archive + default 2y retention, ran "
            "Start-ManagedFolderAssistant. Now 31GB.",
            "Recoverable Items at 30GB due to litigation hold - escalated to Messaging, purged after Legal "
            "ok.",
            "User cleared Deleted Items (12GB) and large Sent Items attachments. Under quota, outbox sent.",
            "Enable-Mailbox -Archive done, archive policy applied. Explained archive folder to user.",
            "Licence was E1 (50GB), moved to E3 group per manager approval -> 100GB quota.",
        ),
    ),
    Topic(
        key="lockout",
        runbook="ad-account-lockout",
        match="full",
        count=6,
        category="Security",
        cis=("Active Directory", "DC01", "corp.example.com"),
        titles=(
            "@self cant login!!",
            "account locked",
            "Locked out again",
            "@agent user locked out - {uid}",
            "@self my account keeps locking every few min",
            "Cannot log on - referenced account is locked out",
            "locked out of laptop",
        ),
        bodies=(
            "@self i keep getting locked out. reset my password on {day} and since then it locks every "
            "10-15 mins",
            "@self The referenced account is currently locked out and may not be logged on to.\n\n"
            "That's all it says. Please unlock asap, I have a client call at {time}.",
            "@agent Please unlock account for {user} ({uid}). User called from {site}, identity verified via "
            "manager callback ({mgr}).",
            "@self I'm locked out of my laptop and Teams on my phone keeps asking for password too. "
            "Can you unlock me?",
            "@agent Account {uid} locked out {n} times today. Event 4740 on DC01 shows caller computer "
            "{laptop}. "
            "User says they don't use that device any more.",
            "@self locked out again!!! this is the third time this week. I think my phone is doing it?",
        ),
        notes=(
            "Unlocked. 4740 source was user's old iPhone with cached password in native Mail. "
            "Account removed from phone, no further lockouts.",
            "Unlock-ADAccount {uid}. Source was a disconnected RDP session on {server}, logged it off.",
            "Stale credential in Credential Manager for \\\\fs01 (mapped drive). Deleted with cmdkey, "
            "unlocked.",
            "unlocked after ID verification",
            "Scheduled task on {server} ran as the user with old password. Changed to service account, "
            "notified app owner.",
            "Bad attempts from external IP (spray). Unlocked, forced pwd reset, sessions revoked, "
            "Security informed ({ref}).",
        ),
    ),
    Topic(
        key="mfa",
        runbook="mfa-authenticator-registration-reset",
        match="full",
        count=5,
        category="Security",
        cis=("Entra ID", "Microsoft Authenticator"),
        titles=(
            "@new New phone - authenticator not working",
            "MFA reset please",
            "@push not getting authenticator notifications",
            "@aadsts AADSTS50076 when signing in",
            "@lost lost phone cant approve sign in",
            "need to re-register MFA",
        ),
        bodies=(
            "@new I got a new {phone} over the weekend and didn't move the Authenticator app across. "
            "Now I can't sign in to anything, it keeps asking me to approve on the old phone which I "
            "traded in.",
            "@push I'm not getting the push notifications on my phone anymore. The number shows on the "
            "laptop "
            "but nothing pops up on the phone.",
            "@aadsts Error when logging in from {city}:\nAADSTS50076: Due to a configuration change made by "
            "your "
            "administrator, or because you moved to a new location, you must use multi-factor "
            "authentication to access '00000003-0000-0000-c000-000000000000'.\nI don't have the app set up",
            "@lost Lost my phone on the train {when_short}. Need MFA reset so I can set up the replacement. "
            "Manager {mgr} can confirm it's me.",
            "@agent user needs mfa methods cleared, has new number. verified by video call",
            "@otp Authenticator codes are rejected - 'The code you entered doesn't match'. phone time looks "
            "right??",
        ),
        notes=(
            "@new,lost,agent Identity verified via manager callback. Deleted old Authenticator method, "
            "issued TAP (60 min), "
            "user registered new {phone} at aka.ms/mysecurityinfo.",
            "Require re-register MFA set, user re-enrolled, test sign-in OK.",
            "@push Android battery optimisation was killing Authenticator. Disabled optimisation, pushes "
            "arrive "
            "now.",
            "@otp Phone clock set manually 3 min off -> OTP codes rejected. Set automatic time, fixed.",
            "@lost,agent Revoked sessions, removed methods, TAP issued. Added SMS as backup method.",
        ),
    ),
    Topic(
        key="sspr",
        runbook="sspr-password-reset",
        match="full",
        count=6,
        category="Inquiry / Help",
        cis=("Entra ID", "Active Directory", "SSPR portal"),
        titles=(
            "@exp password expired",
            "@forgot forgot password",
            "@sspr Password reset not working",
            "@sspr cant reset my password online",
            "need password reset",
            "@aadsts AADSTS50126 invalid username or password",
            "@cache pw expired on laptop, home working",
        ),
        bodies=(
            "@exp My password expired while I was on leave and now I can't log in to anything.",
            "@forgot forgot my password after the holidays, please reset. I'm at my desk in {site}.",
            "@sspr The self service reset page says 'Your organization hasn't set up your account to use "
            "this "
            "feature'. Can you reset it for me?",
            "@cache I reset my password on the website but the laptop still only accepts the old one. "
            "I'm working from home.",
            "@aadsts,exp Keep getting:\nAADSTS50126: Error validating credentials due to invalid username "
            "or password.\n"
            "I'm sure it's right, maybe expired?",
            "@new new starter here ({user}), I was given a temp password but it doesn't work anymore.",
            "@sspr tried passwordreset.microsoftonline.com and it says we're sorry you can't reset your "
            "password "
            "at this time",
        ),
        notes=(
            "@forgot,exp,new,sspr,aadsts User not registered for SSPR. Verified ID, reset in ADUC with "
            "change-at-next-logon, walked "
            "through SSPR registration.",
            "@cache Cached credential on remote laptop: logged in with old pw, connected VPN, lock/unlock "
            "with new "
            "pw.",
            "Walked user through SSPR portal. Done.",
            "@sspr Password writeback failing (event 31005) on AADC-01 - restarted ADSync, reset then "
            "applied. "
            "Raised {ref} for AADC.",
            "@sspr Added to GG-SSPR-Enabled, user completed reset themselves.",
            "pwd reset, user logged in ok",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="shared-mailbox",
        runbook="shared-mailbox-access",
        match="full",
        count=5,
        category="Inquiry / Help",
        cis=("Exchange Online",),
        fills={"smb": ("accounts", "payroll", "recruitment", "customer-service", "facilities", "invoices")},
        titles=(
            "@req access to {smb} mailbox",
            "@show shared mailbox not showing in outlook",
            "@sendas need send as permission for {smb}",
            "@folders Cannot expand the folder - shared mailbox",
            "@sent sent items from shared mailbox go to my sent items",
            "@req please add me to the {smb} shared inbox",
        ),
        bodies=(
            "@req please give me access to the {smb}@ mailbox, approved by {mgr} (cc).",
            "@show I was given access to {smb} but it doesn't appear in Outlook. I can open it in OWA.",
            "@sendas When I send from {smb}@corp.example.com I get:\n550 5.7.60 SMTP; Client does not have "
            "permissions to send as this sender",
            "@folders Shared mailbox shows 'Cannot expand the folder. The set of folders cannot be opened. "
            "You do not have permission to log on.'",
            "@sent Emails I send as {smb} end up in my own Sent Items, team can't see what was replied.",
            "@req New team member {user} needs full access + send as on {smb}. Thanks",
        ),
        notes=(
            "@req,show FullAccess (automapping) + SendAs granted. Mailbox appeared after Outlook restart.",
            "@show,folders Access was via group so no automapping. Added manually under More Settings > "
            "Advanced.",
            "@sent Set MessageCopyForSentAsEnabled on {smb}. Sent items now copied.",
            "@sendas Added SendAs (Add-RecipientPermission), 5.7.60 gone after 30 min.",
            "@req Owner approval received, access granted.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="dl",
        runbook="distribution-list-changes",
        match="full",
        count=4,
        category="Inquiry / Help",
        cis=("Exchange Online",),
        fills={
            "dl": (
                "all-sales-uk",
                "finance-team",
                "it-oncall",
                "emea-managers",
                "project-atlas",
                "london-office",
            ),
        },
        titles=(
            "@add add me to {dl} distribution list",
            "@remove remove leavers from {dl}",
            "@recv not receiving emails sent to {dl}",
            "@ext external emails to {dl} bouncing",
            "@new new distribution list request",
            "@owner change owner of DL {dl}",
        ),
        bodies=(
            "@add Please add {user} to {dl}@corp.example.com. I'm the team lead.",
            "@remove Can you remove these people from {dl}: they left in September. list attached.",
            "@recv I'm not getting emails sent to {dl}. Everyone else in my team is.",
            "@ext Our supplier gets this when emailing {dl}:\n550 5.7.133 "
            "RESOLVER.RST.SenderNotAuthenticatedForGroup;"
            " authentication required; Delivery restriction check failed as sender not authenticated",
            "@new Can we get a new DL 'project-{proj}' with the following members ... owner me",
            "@owner The owner of {dl} left, please make {mgr} the owner.",
        ),
        notes=(
            "@add,remove,new Added via Add-DistributionGroupMember.",
            "@add,remove,recv DL is dirsynced - changed in AD, delta sync, membership now shows in EXO.",
            "@ext RequireSenderAuthenticationEnabled set to false with owner approval. External mail "
            "delivers.",
            "@owner Owner updated (ManagedBy).",
            "@recv User's Department attribute wrong so not in dynamic DL; HR corrected it.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="mobile-email",
        runbook="mobile-device-email-setup",
        match="full",
        count=4,
        category="Inquiry / Help",
        cis=("Outlook Mobile", "Intune"),
        titles=(
            "email on new phone",
            "@ios set up work email on iphone",
            "cannot get mail on phone",
            "@portal outlook app says company portal required",
            "@ca phone blocked by conditional access",
            "@android how do I get email on android",
        ),
        bodies=(
            "Got a new {phone}, how do I get my work email on it?",
            "@ios,native iPhone Mail says 'Cannot Get Mail - The connection to the server failed' and keeps "
            "asking for "
            "password.",
            "@portal,android Outlook app on Android: 'Your organization requires the Intune Company Portal "
            "app'. "
            "Do I have to let IT control my phone?",
            "@ca Tried adding work account on my phone: 'Access has been blocked by Conditional Access "
            "policies' "
            "AADSTS53003",
            "can you help me get outlook on my personal phone. I'm in {site} today.",
            "@native phone email stopped after password change. using the built in mail app",
        ),
        notes=(
            "@native,ios,ca Native Mail blocked by policy - installed Outlook mobile, signed in, app PIN "
            "set.",
            "@portal,android Company Portal installed (MAM broker only, no enrolment). Outlook working.",
            "Walked user through setup over Teams call.",
            "@native Removed old native account (was causing lockouts), Outlook mobile set up.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="license",
        runbook="m365-license-assignment",
        match="full",
        count=4,
        category="Inquiry / Help",
        cis=("Microsoft 365", "Entra ID"),
        titles=(
            "@office Office says unlicensed product",
            "@pbi need power bi pro licence",
            "@new no mailbox for new starter",
            "You need a license to use this feature",
            "@office Product Deactivated banner in Word",
            "@visio visio licence request",
        ),
        bodies=(
            "@office Word and Excel show a red bar 'Unlicensed Product - Most features have been disabled'.",
            "@pbi Can I have a Power BI Pro licence? I need to publish reports to the {dept} workspace. "
            "Manager {mgr} approved.",
            "@new {user} started {day}, has an AD account but no mailbox and Teams doesn't work.",
            "@visio Trying to use Visio online: 'You need a license to use this feature'.",
            "@office Getting 'PRODUCT DEACTIVATED' in Excel {when}. File > Account says there was a problem "
            "with "
            "your account.",
            "@e5 Please assign E5 to {user}, they moved to the compliance team",
        ),
        notes=(
            "@new UsageLocation was empty so group licence failed. Set GB, E3 applied, mailbox created.",
            "@pbi Added to LIC-PowerBI-Pro after approval.",
            "@new,pbi,e5,visio CountViolation on E3 group - reclaimed 5 licences from disabled leavers.",
            "@office Signed out of Office, cleared activation with reset script, signed in. Licensed.",
            "@e5,office Conflicting direct-assigned E1 removed, E3 via group now active.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="aadc",
        runbook="aad-connect-sync-errors",
        match="full",
        count=4,
        category="Software",
        cis=("AADC-01", "Entra Connect"),
        alerts=(
            (
                "@dup Identity synchronization error report: {n} errors",
                "Microsoft Entra ID\n\nIdentity synchronization error report\nTenant: corp.example.com\n\n"
                "Error type: AttributeValueMustBeUnique\nObject: CN={last} {first},OU=Users,OU=London,"
                "DC=corp,DC=example,DC=com\nAttribute: ProxyAddresses\nConflicting value: "
                "smtp:{uid}@corp.example.com\n\nThis is an automated message.",
            ),
            (
                "@stop Entra Connect: sync has not occurred in more than 3 hours",
                "Microsoft Entra Connect Health alert\nServer: AADC-01\nAlert: Export to Microsoft Entra ID "
                "failed\nLast successful sync: {evtime}\nSeverity: Error",
            ),
        ),
        alert_share=0.35,
        titles=(
            "@new new starter not showing in M365",
            "AD changes not syncing to Azure",
            "azure ad connect errors",
            "@dup duplicate proxy address sync error",
            "@new user {uid} not in Entra after 2 hours",
            "@stop Entra Connect sync stopped?",
        ),
        bodies=(
            "@new Created {user} in AD this morning but they don't exist in Microsoft 365 yet so we can't "
            "assign "
            "a licence.",
            "I changed {user}'s surname in AD two days ago, still old name in Outlook/Teams.",
            "@dup Got the sync error email again: AttributeValueMustBeUnique for {uid}.",
            "@stop Portal says sync has not occurred in more than 3 hours. ADSync service looks running on "
            "AADC-01.",
            "Is sync broken? Several group membership changes from yesterday not in Entra.",
            "@soft InvalidSoftMatch error for {uid} - there was a cloud only account with the same email "
            "from the "
            "pilot.",
        ),
        notes=(
            "@new User created in non-synced OU; moved to OU=Users,OU=London. Delta sync, object appeared.",
            "@dup,soft Duplicate proxyAddress on old disabled account removed. Error cleared after delta "
            "sync.",
            "@stop Scheduler disabled after upgrade; Set-ADSyncScheduler -SyncCycleEnabled $true, delta "
            "sync.",
            "@stop ADSync service hung; restarted, export completed.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="saml",
        runbook="sso-saml-login-failure",
        match="full",
        count=5,
        category="Security",
        cis=("Entra ID", "Workday", "Concur", "Confluence", "Tableau"),
        fills={
            "sapp": (
                "Workday",
                "Concur",
                "Confluence",
                "Tableau",
                "Miro",
                "the expenses portal",
                "Jira Cloud",
            ),
            "aadsts": (
                "AADSTS700016: Application with identifier 'https://app.example.net/saml' was not found in "
                "the directory.",
                "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs "
                "configured for the application.",
            ),
        },
        titles=(
            "cant log into {sapp}",
            "SSO error on {sapp}",
            "@loop {sapp} login loop",
            "@inresp SAML response invalid",
            "@aadsts,assign {sapp} - AADSTS error after login",
            "@all single sign on broken for everyone on {sapp}",
        ),
        bodies=(
            "@assign When I click {sapp} in My Apps I get:\nAADSTS50105: The signed in user is not assigned "
            "to a role "
            "for the application.\nI moved to the {dept} team last week.",
            "@loop {sapp} keeps bouncing me between login.microsoftonline.com and the app, never lands. "
            "cleared cache already",
            "@inresp Error from {sapp} after login: 'SAML response is invalid: Invalid InResponseTo'. I use "
            "a "
            "bookmark.",
            "@all Nobody can log in to {sapp} since {time}, error says signature validation failed. "
            "Did a certificate change?",
            "@aadsts Getting {aadsts}\non {sapp}.\nCorrelation ID: {guid}\nTimestamp: {evtime}Z",
            "@assign new joiner can't access {sapp} - 'you don't have access to this' after sign in",
        ),
        notes=(
            "@assign User not in the app's access group after team move; added via access request, SSO "
            "works.",
            "@all SAML signing cert in Entra rolled over; app owner uploaded new federation metadata. All "
            "OK.",
            "@inresp,loop Stale bookmark to login.microsoftonline.com caused InResponseTo error. User uses "
            "app URL now.",
            "@aadsts Identifier/Reply URL mismatch after vendor domain change; updated Basic SAML "
            "Configuration.",
            "@all Clock on app server 7 min off -> NotBefore failures. Fixed chrony, login OK.",
        ),
    ),
    Topic(
        key="ntp",
        runbook="ntp-time-drift-kerberos",
        match="full",
        count=3,
        category="Security",
        cis=("{host}",),
        fills={"host": ("@lnx lnx-app-03", "@win WIN-APP-05", "@lnx lnx-batch-01", "@win WIN-SQL-03")},
        titles=(
            "@krb time difference too great error",
            "@clock clock wrong on server {host}",
            "@kinit kinit: Clock skew too great",
            "@krb KRB_AP_ERR_SKEW on {host}",
            "@clock server time 5 minutes out",
            "@kinit,lnx logins failing on linux box - clock skew",
        ),
        bodies=(
            "@krb,win Users can't access {host}: 'The time difference between the client and server is too "
            "great.'",
            "@kinit,lnx kinit {uid}@CORP.EXAMPLE.COM\nkinit: Clock skew too great while getting initial "
            "credentials\n"
            "on {host}",
            "@clock {host} clock is {n} minutes ahead of everything else. Log timestamps are off and SSO is "
            "failing.",
            "@krb,win Event 4771 Kerberos pre-authentication failed, failure code 0x25 for {host}$",
            "@cmos,clock,win w32tm /query /source returns 'Local CMOS Clock' on {host}. Shouldn't it be a "
            "DC?",
            "@vm,clock,krb after vmotion the VM {host} time jumped, now can't log in with AD accounts",
        ),
        notes=(
            "@cmos,krb w32tm source was Local CMOS; configured domhier, resync. Kerberos OK.",
            "@vm,kinit VMware Tools time sync fighting chrony; disabled tools sync, chronyc makestep.",
            "@kinit,krb,clock UDP 123 blocked to DCs from new subnet; firewall rule added.",
            "@clock,krb PDC emulator had no external source; configured pool.ntp.org, members converged.",
        ),
        prio=PRIO_SERVER,
    ),
]

# ---- Servers, platforms, databases (full matches) -------------------------------------------

TOPICS += [
    Topic(
        key="linux-disk",
        runbook="linux-server-disk-full",
        match="full",
        count=5,
        category="Hardware",
        cis=("lnx-app-07", "lnx-app-03", "lnx-db-02", "lnx-batch-01", "lnx-etl-04"),
        fills={"mount": ("/data", "/opt", "/u01", "/srv", "/")},
        alerts=(
            (
                "[ALERT] Disk usage on {host} {mount} is {pct}%",
                "Host: {host}\nTrigger: Free disk space is less than 5% on volume {mount}\nSeverity: High\n"
                "Value: {pct}% used\nEvent time: {evtime}\nOriginal event ID: {evid}\n\n"
                "*** auto-generated by Zabbix ***",
            ),
            (
                "PROBLEM: {host} - Filesystem {mount} CRITICAL",
                "***** Nagios *****\nNotification Type: PROBLEM\nService: DISK {mount}\nHost: {host}\n"
                "State: CRITICAL\nInfo: DISK CRITICAL - free space: {mount} 1{n}84 MB (2% inode=87%);\n"
                "Date/Time: {evtime}",
            ),
        ),
        alert_share=0.45,
        titles=(
            "server {host} full",
            "app down - no space left on device",
            "urgent - {host} disk 100%",
            "cant write files to {mount} on {host}",
            "@batch batch job failing disk full",
            "{host} out of space again",
        ),
        bodies=(
            "Our app on {host} is throwing errors:\n\n  java.io.IOException: No space left on device\n\n"
            "Can someone from linux team look, {mount} shows 100% in df.",
            "@batch Nightly ETL failed at {time}, log says 'write error: No space left on device'. "
            "This is blocking the morning reports.",
            "df -h output:\nFilesystem                    Size  Used Avail Use% Mounted on\n"
            "/dev/mapper/vg_data-lv_data  200G  200G   20K 100% {mount}\nplease extend or clean up",
            "{host} is full again. Last time someone cleared old core dumps. Can you check?",
            "deploy to {host} failed - 'cannot create temp file: No space left on device'",
            "Getting disk full alerts for {host} all night, nobody picked them up. Now the app is down.",
        ),
        notes=(
            "64GB of core dumps in /var/lib/systemd/coredump. Removed, problem raised with app team for the "
            "crash. {mount} now 58%.",
            "Deleted-but-open file held by java (lsof +L1), restarted app service, space freed.",
            "Growth legitimate (new data feed). Added 100G disk, pvresize + lvextend -r. {mount} at 41%.",
            "cleaned /tmp and old release dirs under /opt/app/releases, kept last 3. 62% used.",
            "dnf clean all + removed old kernels, freed enough. Alert cleared.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="windows-disk",
        runbook="windows-server-disk-full",
        match="full",
        count=5,
        category="Hardware",
        cis=("WIN-FS-02", "WIN-APP-05", "WIN-IIS-01", "WIN-SQL-03", "WIN-TS-02"),
        alerts=(
            (
                "[ALERT] Free space on {host} C: below 5%",
                "SCOM Alert: Logical Disk Free Space is low\nSource: C:\nPath: {host}.corp.example.com\n"
                "Description: The disk C: on computer {host}.corp.example.com is running out of disk space. "
                "The value that exceeded the threshold is {free}% free space.\nAlert raised: {evtime}",
            ),
            (
                "Disk space critical - {host} - D:",
                "PRTG Sensor: Disk Free (D:)\nStatus: Down (Free space below error limit: {free} %)\n"
                "Device: {host}\nLast message: {free} % free\nTime: {evtime}",
            ),
            (
                "{host}: Event 2013 The C: disk is at or near capacity",
                "Event ID 2013 from source srv on {host}:\nThe C: disk is at or near capacity. "
                "You may need to delete some files.\nForwarded by WEF subscription 'Server-Disk'.",
            ),
        ),
        alert_share=0.45,
        titles=(
            "C drive full on {host}",
            "server {host} low disk space",
            "@iis IIS app down - not enough space on disk",
            "@patch Patching failed on {host} - disk space",
            "urgent - {host} running out of space",
            "@ts terminal server C: almost full, users cant log in",
        ),
        bodies=(
            "@patch Windows updates failing on {host} with 0x80070070. C: has about 800MB free.",
            "The app on {host} is erroring with 'There is not enough space on the disk'. "
            "Can someone clean up?",
            "@iis {host} C: drive at 99%. I think it's the IIS logs again, they're never cleaned.",
            "@ts Users on {host} get temp profiles / very slow logon. C: is nearly full (1.2GB left).",
            "@sql SQL maintenance job writes backups to C:\\Backup on {host} by mistake, it's full now. "
            "Please help clear space, the DBA is off.",
            "@patch Patch job for {host} failed in last night's window. Pre-check: insufficient free space "
            "on "
            "system drive.",
        ),
        notes=(
            "@iis Removed 38GB of IIS logs > 30 days, added scheduled task for cleanup. C: 41% free.",
            "@patch DISM StartComponentCleanup + cleared SoftwareDistribution\\Download. Freed 11GB, patches "
            "installed.",
            "@dump MEMORY.DMP (32GB) from last BSOD removed after copying to share for vendor. ok now.",
            "Extended C: by 40GB in vSphere ({chg}), Resize-Partition done.",
            "@ts Limited shadow storage to 10%, removed stale user profiles with owner ok.",
            "@sql SQL maintenance plan pointed at C:\\Backup; DBA moved target to backup share, old .bak "
            "removed. "
            "C: 63% free.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="varlog",
        runbook="linux-var-log-full-logrotate",
        match="full",
        count=4,
        category="Software",
        cis=("lnx-web-02", "lnx-app-07", "lnx-batch-01"),
        fills={"bigg": ("38", "52", "17", "24", "61")},
        alerts=(
            (
                "[ALERT] Disk usage on {host} /var is {pct}%",
                "Host: {host}\nTrigger: Free disk space is less than 5% on volume /var\nValue: {pct}% used\n"
                "Top dirs (auto-collected): /var/log {bigg}G, /var/lib 3.1G\nEvent time: {evtime}",
            ),
            (
                "PROBLEM: {host} /var/log filesystem WARNING",
                "Notification Type: PROBLEM\nService: DISK /var/log\nHost: {host}\nState: WARNING\n"
                "Info: DISK WARNING - free space: /var/log 412 MB (4%)\nDate/Time: {evtime}",
            ),
        ),
        alert_share=0.5,
        titles=(
            "/var/log full on {host}",
            "@rot logrotate not working",
            "huge log file filling disk",
            "@journal journal taking all disk space",
            "@rot {host} /var 100% - app.log {bigg}GB",
            "@rsys rsyslog stopped logging",
        ),
        bodies=(
            "@rot /var/log/app/app.log on {host} is {bigg}GB. Looks like logrotate isn't rotating it.",
            "@journal journalctl --disk-usage\nArchived and active journals take up {bigg}.2G in the file "
            "system.\n\n"
            "that's most of /var",
            "@rot Hundreds of files like app.log.1 .. app.log.400 none compressed. /var at {pct}%.",
            "@open Rotated logs deleted but df still shows full. lsof shows deleted app.log held by the java "
            "process.",
            "@debug Someone left DEBUG logging on after the incident on {day}, /var/log filling fast on "
            "{host}.",
            "@rsys rsyslog: 'No space left on device' - /var/log full, security wants logs to keep flowing",
        ),
        notes=(
            "@rot,open logrotate config missing copytruncate; app held file. Fixed config, truncated log, "
            "forced "
            "rotation.",
            "@journal,rsys journalctl --vacuum-size=500M, SystemMaxUse=1G. /var 45%.",
            "@rot Deleted rotated logs > 14 days (retention checked). Added compress/delaycompress.",
            "@debug App team reverted log level to INFO. Truncated log.",
            "@rot logrotate.timer disabled after OS upgrade - enabled and ran.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="cpu",
        runbook="server-high-cpu",
        match="full",
        count=5,
        category="Hardware",
        cis=(
            "@lnx lnx-app-03",
            "@win WIN-APP-05",
            "@win,iis WIN-IIS-01",
            "@lnx lnx-web-02",
            "@win,ts WIN-TS-02",
        ),
        fills={"load": ("18.42", "24.07", "31.90", "12.55", "16.31")},
        alerts=(
            (
                "[ALERT] CPU utilisation on {host} above 95% for 15 minutes",
                "Zabbix\nTrigger: High CPU utilization (over 95% for 15m)\nHost: {host}\n"
                "Current value: {pct}.{n} %\nLoad average (1m): {load}\nSeverity: High\nTime: {evtime}",
            ),
            (
                "@lnx PROBLEM: {host} CPU Load CRITICAL",
                "Notification Type: PROBLEM\nService: CPU Load\nHost: {host}\nState: CRITICAL\n"
                "Info: CRITICAL - load average per CPU: {load}\nDate/Time: {evtime}",
            ),
            (
                "@win SCOM: Total CPU Utilization Percentage is too high - {host}",
                "Alert: Total CPU Utilization Percentage is too high\nSource: {host}.corp.example.com\n"
                "The threshold for the Processor\\% Processor Time\\_Total performance counter has been "
                "exceeded. The value that exceeded the threshold is {pct}.",
            ),
        ),
        alert_share=0.4,
        titles=(
            "urgent - server slow",
            "{host} very slow, cpu 100%",
            "@app application timeouts - server maxed out",
            "@ts terminal server laggy for everyone",
            "high cpu on {host}",
            "@iis w3wp.exe eating all the CPU",
        ),
        bodies=(
            "@iis Everything on {host} is crawling. Task Manager shows CPU pegged at 100%, mostly w3wp.exe.",
            "@ts users on the terminal server {host} complaining typing lags by seconds. cpu at 98% "
            "constantly",
            "@java,lnx top on {host}:\n  PID USER      %CPU %MEM COMMAND\n 4182 appsvc    {pct}.3 12.1 java\n"
            " 1021 root       3.0  0.2 sshd\nload average: {load}\nApp team says nothing changed.",
            "@app,deploy {when} {app} is timing out. infra graphs show {host} at 95%+ cpu since the deploy "
            "at {time}",
            "@av,win Can someone check {host}? Defender full scan seems to run in business hours and kills "
            "performance.",
            "URGENT server slow!! whole team can't work. it's {host} I think",
        ),
        notes=(
            "@iis,win Runaway w3wp for one app pool; recycled pool, took dumps for dev team. CPU 20%.",
            "@steal,lnx High steal time (%st 35) - host overcommitted. VM vMotioned to esx-07, CPU normal.",
            "@av,win Defender scheduled scan moved to 02:00 via policy. CPU fine during day.",
            "@deploy,java Deployment at 14:00 introduced a busy loop; app team rolled back. Thread dumps "
            "attached.",
            "Added 4 vCPU under {chg}. Load 40-60% now.",
            "@script,ts,win stuck PowerShell script from scheduled task killed, task fixed by owner",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="java-oom",
        runbook="java-app-memory-leak-oom",
        match="full",
        count=4,
        category="Software",
        cis=("lnx-app-07", "lnx-app-03", "ORDERS-API", "BILLING-API"),
        fills={"svc": ("app-orders", "billing-api", "pricing-service", "doc-render", "crm-sync")},
        alerts=(
            (
                "@heap [ALERT] {svc} JVM heap usage above 95%",
                "Prometheus alert JvmHeapUsageHigh\ninstance: {host}:9404\njob: {svc}\nvalue: 0.9{n}\n"
                "summary: JVM heap above 95% for 10m\nsince: {evtime}",
            ),
            (
                "@heap {svc} restarted - OutOfMemoryError",
                'Log alert (Splunk): {svc} on {host}\nException in thread "http-nio-8080-exec-{n}" '
                "java.lang.OutOfMemoryError: Java heap space\n\tat "
                "java.util.Arrays.copyOf(Arrays.java:3512)\n"
                "\tat java.util.ArrayList.grow(ArrayList.java:237)\ncount: {n} in 15m",
            ),
        ),
        alert_share=0.35,
        titles=(
            "{svc} crashed again - out of memory",
            "@heap java.lang.OutOfMemoryError: Java heap space in prod",
            "@leak app gets slower every day until restart",
            "@kernel {svc} killed by oom-killer",
            "@gc GC overhead limit exceeded on {host}",
            "@leak memory leak in {svc}?",
        ),
        bodies=(
            '@heap {svc} fell over at {time}. Log:\nException in thread "main" java.lang.OutOfMemoryError: '
            "Java heap space\nWe restarted it and it's fine for now but this happens every 3-4 days.",
            "@kernel dmesg on {host}:\n[{kt}] Out of memory: Killed process {pid} (java) total-vm:14.2G, "
            "anon-rss:7.9G\nservice restarted by systemd.",
            "@leak The {svc} response time creeps up over the week and a restart fixes it. Heap graph looks "
            "like a "
            "saw tooth going up. Please take a heap dump before next restart.",
            "@gc java.lang.OutOfMemoryError: GC overhead limit exceeded\n"
            "\tat com.example.orders.cache.OrderCache.put(OrderCache.java:212)\n\nsince release 4.{n}.0",
            "Users get 503 from {svc} several times a day. Looks like the JVM runs out of memory and "
            "restarts.",
            "@heap can infra increase Xmx for {svc}? It keeps dying with heap space errors.",
        ),
        notes=(
            "@leak,gc,heap Heap dump taken (jcmd GC.heap_dump), MAT shows unbounded OrderCache map. Dev fix "
            "in 4.{n}.1; "
            "nightly rolling restart as workaround ({chg}).",
            "@kernel Container limit 2Gi with Xmx 2g -> kernel OOM. Set MaxRAMPercentage=75, limit 3Gi.",
            "Restarted {svc}, added HeapDumpOnOutOfMemoryError flags. Problem {prb} raised.",
            "@heap Xmx raised 4g -> 6g (host had headroom) as temp fix; dev team investigating leak.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="k8s-crash",
        runbook="k8s-pod-crashloopbackoff",
        match="full",
        count=5,
        category="Software",
        cis=("k8s-prod-cluster", "k8s-stg-cluster"),
        fills={
            "ns": ("payments", "checkout", "orders", "identity", "reporting"),
            "deploy": ("payments-api", "checkout-web", "orders-worker", "auth-proxy", "report-gen"),
        },
        alerts=(
            (
                "[FIRING:1] KubePodCrashLooping {ns}/{pod}",
                "Alertmanager\nalertname: KubePodCrashLooping\ncluster: {host}\nnamespace: {ns}\npod: {pod}\n"
                "container: {deploy}\nseverity: warning\ndescription: Pod {ns}/{pod} ({deploy}) is in "
                "waiting "
                'state (reason: "CrashLoopBackOff").',
            ),
            (
                "[FIRING:1] KubeDeploymentReplicasMismatch {ns}/{deploy}",
                "Alertmanager\nalertname: KubeDeploymentReplicasMismatch\nnamespace: {ns}\n"
                "deployment: {deploy}\ndescription: Deployment {ns}/{deploy} has not matched the expected "
                "number of replicas for longer than 15 minutes.",
            ),
        ),
        alert_share=0.35,
        titles=(
            "pods crashlooping in {ns}",
            "@deploy {deploy} CrashLoopBackOff after deploy",
            "prod api down - pods restarting",
            "CrashLoopBackOff {pod}",
            "service returning 503, no ready pods",
            "@exit1 k8s pod keeps restarting exit code 1",
        ),
        bodies=(
            "@deploy After today's release {deploy} pods are in CrashLoopBackOff.\n\n"
            "NAME                              READY   STATUS             RESTARTS   AGE\n"
            "{pod}   0/1     CrashLoopBackOff   {n}          1{n}m",
            "@secret,exit1 kubectl logs {pod} -n {ns} --previous\n...\nError: required env var DB_PASSWORD "
            "not set\n"
            "exiting\n\ncan platform team help, secret seems missing",
            "@exit1,db Pods for {deploy} restart every couple of minutes. describe shows Last State: "
            "Terminated, "
            "Reason: Error, Exit Code: 1. Logs say connection refused to postgres.",
            "@probe {deploy} in {ns} keeps getting killed - 'Liveness probe failed: HTTP probe failed with "
            "statuscode: 503'. App takes ~90s to start.",
            "Our staging env is broken, all pods crashlooping since {time}. We didn't change anything (I "
            "think).",
            "@oom Exit Code 137 / OOMKilled on {pod}, restarts {n}{n}. Is the limit too low?",
        ),
        notes=(
            "@deploy Rolled back via Argo CD to previous revision, pods healthy. Dev fixing config in "
            "release.",
            "@secret Secret db-credentials missing in {ns} after namespace re-create; restored from Vault, "
            "rollout restart.",
            "@probe Added startupProbe (failureThreshold 30) in helm values, pods stable.",
            "@oom OOMKilled - memory limit raised 512Mi -> 1Gi via pipeline.",
            "@db Postgres was down (see {ref}), pods recovered on their own once DB was back.",
            "@deploy kubectl rollout undo deploy/{deploy} -n {ns}. ok",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="k8s-pull",
        runbook="k8s-imagepullbackoff",
        match="full",
        count=4,
        category="Software",
        cis=("k8s-prod-cluster", "k8s-stg-cluster"),
        fills={
            "ns": ("payments", "checkout", "orders", "identity", "reporting"),
            "deploy": ("payments-api", "checkout-web", "orders-worker", "auth-proxy", "report-gen"),
            "tag": ("1.14.2", "2.3.0", "v4.7.1", "2026.10.3", "release-88"),
        },
        alerts=(
            (
                "[FIRING:1] KubePodNotReady {ns}/{pod}",
                "Alertmanager\nalertname: KubePodNotReady\ncluster: {host}\nnamespace: {ns}\npod: {pod}\n"
                "description: Pod {ns}/{pod} has been in a non-ready state for longer than 15 minutes.\n"
                "reason: ImagePullBackOff",
            ),
        ),
        alert_share=0.25,
        titles=(
            "ImagePullBackOff on {deploy}",
            "deployment stuck - ErrImagePull",
            "@auth pods not starting: pull access denied",
            "@tag new release wont roll out, image not found",
            "@x509 x509 error pulling images from registry",
            "@rate toomanyrequests from docker hub",
        ),
        bodies=(
            "@tag Events:\n  Warning  Failed  {n}m  kubelet  Failed to pull image "
            '"registry.corp.example.com/{ns}/'
            '{deploy}:{tag}": rpc error: code = NotFound desc = failed to resolve reference: manifest '
            "unknown\n"
            "  Warning  Failed  kubelet  Error: ErrImagePull",
            "@auth Rollout of {deploy} stuck, new pods ImagePullBackOff. Error mentions 'unauthorized: "
            "authentication required'. Did the robot account expire?",
            "@x509 Since the registry cert was renewed our nodes fail to pull: x509: certificate signed by "
            "unknown authority",
            "@tag Pipeline says deploy succeeded but pod is ImagePullBackOff. tag {tag} maybe never pushed? "
            "CI job had a failed push step",
            "@rate Getting 'toomanyrequests: You have reached your pull rate limit' for the redis sidecar on "
            "{host}.",
            "{deploy} pods stuck ContainerCreating -> ImagePullBackOff in {ns} since {time}. "
            "old pods still serving luckily",
        ),
        notes=(
            "@tag Tag {tag} never pushed (CI push step failed). Re-ran pipeline, pods pulled and started.",
            "@auth Robot account token expired; rotated, recreated regcred secret in {ns}, deleted pods.",
            "@x509 New registry CA added to node trust bundle via DaemonSet, containerd restarted.",
            "@rate Mirrored redis image to internal registry, updated chart. No more rate limit errors.",
            "@tag fixed typo in image tag in values-prod.yaml",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="db-pool",
        runbook="db-connection-pool-exhausted",
        match="full",
        count=4,
        category="Database",
        cis=("PG-PRD-01", "SQL-PRD-02", "ORDERS-API"),
        fills={"svc": ("app-orders", "billing-api", "pricing-service", "crm-sync")},
        titles=(
            "@hikari HikariPool connection not available",
            "@pg too many clients already - postgres",
            "@net app errors: timeout obtaining connection from pool",
            "{svc} 500 errors at peak times",
            "db connections maxed out",
            "@net Max pool size was reached",
        ),
        bodies=(
            "@hikari {svc} logs full of:\nHikariPool-1 - Connection is not available, request timed out "
            "after "
            "30000ms.\nDB looks fine per DBA.",
            "@pg FATAL: sorry, too many clients already\nfrom {svc} after we scaled to {n} replicas",
            "@net System.InvalidOperationException: Timeout expired. The timeout period elapsed prior to "
            "obtaining "
            "a connection from the pool. This may have occurred because all pooled connections were in use "
            "and max pool size was reached.",
            "@pg,idle Between 9-10am {svc} throws 500s. pg_stat_activity shows ~{n}0 sessions 'idle in "
            "transaction' "
            "from the app.",
            "Our service can't get DB connections {when}. restart fixes it for an hour or so",
            "@pg remaining connection slots are reserved for non-replication superuser connections\n"
            "this hit the reporting job too",
        ),
        notes=(
            "@idle,hikari Killed idle-in-transaction sessions > 10 min, rolling restart of {svc}. Leak "
            "detection enabled, "
            "dev ticket raised.",
            "@pg replicas x pool size (12 x 20) exceeded max_connections 200. Pool reduced to 10, PgBouncer "
            "planned.",
            "Slow query after release held connections; index added by DBA, pool recovered.",
            "rolling restart as workaround, problem {prb}",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="oracle",
        runbook="oracle-listener-ora-12541",
        match="full",
        count=4,
        category="Database",
        cis=("ORA-PRD-DB01", "ORA-PRD-DB02", "ORA-TST-DB01"),
        fills={
            "db": ("PRDDB", "FINPRD", "HRPRD", "ERPDB"),
            "batch": ("GL_NIGHTLY", "AP_EXTRACT", "PAYROLL_FEED"),
        },
        titles=(
            "@12541 ORA-12541: TNS:no listener",
            "cant connect to oracle db",
            "@batch batch failed - ORA-12541",
            "@12541 Oracle listener down on {host}",
            "@12514 ORA-12514 listener does not know of service",
            "toad cannot connect to {db}",
        ),
        bodies=(
            "@12541 Getting ORA-12541: TNS:no listener when connecting to {db} from SQL Developer. Was fine "
            "yesterday.",
            "@batch Overnight batch {batch} failed at {time}:\njava.sql.SQLRecoverableException: IO Error: "
            "The "
            "Network "
            "Adapter could not establish the connection\nDB host {host}",
            "@12514 ORA-12514: TNS:listener does not currently know of service requested in connect "
            "descriptor\n"
            "after the db server was patched/rebooted on {day}",
            "@12541 tnsping {db}\nTNS Ping Utility for 64-bit Windows: Version 19.0.0.0.0\nAttempting to "
            "contact "
            "(DESCRIPTION = (ADDRESS = (PROTOCOL = TCP)(HOST = {host})(PORT = 1521)) ...)\nTNS-12541: TNS:no "
            "listener",
            "Finance app cannot connect to oracle, users get 'database unavailable' page. urgent, month end",
            "@12541,ip After the server IP change, {db} connections fail with no listener. please check",
        ),
        notes=(
            "@12541,batch Listener not started after reboot (unit not enabled). lsnrctl start, enabled "
            "auto-start.",
            "@12514,ip Service not registered - local_listener pointed to old hostname. Corrected, alter "
            "system "
            "register.",
            "@batch,12541 lsnrctl start LISTENER, service READY, batch rerun OK.",
            "@12541 $ORACLE_BASE full -> listener could not write log and died. Cleared old trace files, "
            "restarted.",
            "@12541 srvctl start listener on node 2 (RAC). tnsping ok",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="sql-blocking",
        runbook="sqlserver-blocking-deadlocks",
        match="full",
        count=4,
        category="Database",
        cis=("SQL-PRD-02", "SQL-PRD-01"),
        fills={
            "sqldb": ("OrdersDB", "CRM_PROD", "Finance", "Warehouse"),
            "spid": ("87", "112", "64", "203", "155"),
        },
        alerts=(
            (
                "@block [ALERT] Blocked processes > 10 on {host}",
                "SQL Monitor alert: Blocking process\nServer: {host}\nDatabase: {sqldb}\nBlocked sessions: "
                "1{n}\n"
                "Longest wait: {mins} min\nHead blocker SPID: {spid}\nRaised: {evtime}",
            ),
        ),
        alert_share=0.3,
        titles=(
            "@block app freezing - sql blocking",
            "@dl deadlock errors in {app}",
            "@timeout Execution Timeout Expired",
            "@dl Transaction was deadlocked - error 1205",
            "@block {sqldb} queries hanging",
            "@block sql server blocking chain since this morning",
        ),
        bodies=(
            "@timeout,block Users of {app} get 'Execution Timeout Expired. The timeout period elapsed prior "
            "to completion "
            "of "
            "the operation or the server is not responding.' Started around {time}.",
            "@dl Transaction (Process ID {spid}) was deadlocked on lock resources with another process and "
            "has "
            "been chosen as the deadlock victim. Rerun the transaction.\n\nhappening several times an hour "
            "in "
            "the order import",
            "@block sp_who2 shows SPID {spid} blocking {n} other sessions on {sqldb}, status sleeping, open "
            "tran 1. "
            "Can DBA look before we kill it?",
            "@block,report The month end report run locks the Orders table and nobody can save orders. Can "
            "we do "
            "something?",
            "@block,timeout {app} screens freeze for minutes, then work again. DBA on leave.",
            "@block we see lots of LCK_M_X waits on {host} since the release on {day}",
        ),
        notes=(
            "@block,timeout Head blocker SPID {spid} was a sleeping report-tool session with open tran. "
            "Killed with app "
            "owner "
            "OK, blocking cleared.",
            "@dl Deadlock graph from system_health sent to dev - two procs update Orders/OrderLines in "
            "opposite "
            "order. Fix in next release.",
            "@dl,block Missing index on OrderLines(OrderId) added ({chg}), deadlocks stopped.",
            "@block,timeout UPDATE STATISTICS dbo.Orders WITH FULLSCAN, plan regression fixed.",
            "@report Moved month-end report to read-only replica.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="backup",
        runbook="backup-job-failed-veeam",
        match="full",
        count=5,
        category="Software",
        cis=("VBR-01", "Veeam B&R"),
        fills={
            "job": (
                "PROD-SQL-Daily",
                "FS-Weekly-Full",
                "Exchange-Hybrid-Nightly",
                "APP-Tier2-Daily",
                "DC-Daily",
            ),
            "vm": ("SQL-PRD-02", "WIN-FS-02", "DC01", "WIN-APP-05", "lnx-db-02"),
        },
        alerts=(
            (
                "@snap [Failed] Job {job} ({n} VMs) 1 failed",
                "Veeam Backup & Replication\n\nJob {job}\nFailed\n{n} of {n} VMs processed\n\n"
                "{vm}  Failed  Failed to create VM snapshot. Error: An error occurred while saving the "
                "snapshot: Failed to quiesce the virtual machine.\n\nStart time: {evtime}\nTotal size: "
                "1.{n} TB",
            ),
            (
                "@vss [Warning] Job {job} finished with warning",
                "Veeam Backup & Replication\nJob {job}\nWarning\n{vm}: Failed to prepare guest for hot "
                "backup. Error: VSSControl: -2147467259 Backup job failed. A VSS critical writer has failed. "
                "Writer name: [SqlServerWriter].\nRetry 3 of 3.\nStart time: {evtime}",
            ),
            (
                "@repo [Failed] Job {job} ({n} VMs) {n} failed",
                "Veeam Backup & Replication\n\nJob {job}\nFailed\n\nError: There is not enough space on the "
                "disk. Failed to write data to the file [E:\\Backups\\{job}\\{job}D2026.vib].\n\n"
                "Start time: {evtime}",
            ),
            (
                "@creds [Failed] Job {job} - guest processing",
                "Veeam Backup & Replication\nJob {job}\nFailed\n{vm}: Error: Failed to connect to guest OS "
                "via RPC. Access is denied. Cannot connect to the host's administrative share.\n"
                "Start time: {evtime}",
            ),
        ),
        alert_share=0.45,
        titles=(
            "backup failed last night",
            "Veeam job {job} failing for {n} nights",
            "backups not running?",
            "@vm {vm} not backed up since {day}",
            "@vm need restore but backup failed",
            "@repo veeam repository full",
        ),
        bodies=(
            "@snap The {job} job failed again. Error:\nFailed to create VM snapshot. Error: An error "
            "occurred "
            "while saving the snapshot: Failed to quiesce the virtual machine.\n\n"
            "Can someone check before tonight's run?",
            "@vm Audit noticed {vm} has no successful backup for {n} days. Please investigate.",
            "@wait Job {job} stuck at 'Waiting for backup infrastructure resources availability' since "
            "{time}.",
            "@vm I needed to restore a file from yesterday on {vm} but the last restore point is from last "
            "week?? backup failing?",
            "@vss veeam email report shows red for {job}:\n{vm} - Failed to prepare guest for hot backup. "
            "A VSS critical writer has failed. Writer name: [SqlServerWriter]",
            "@repo Repository on VBR-01 is at {pct}% and the weekly full will not fit.",
            "@repo {job} failed: 'There is not enough space on the disk. Failed to write data to the file'. "
            "Repo is E: on VBR-01.",
        ),
        notes=(
            "@snap,vm Orphaned snapshot on {vm} consolidated in vCenter, retry successful.",
            "@vss SqlServerWriter in failed state; restarted SQLWriter, vssadmin list writers stable, retry "
            "OK.",
            "@repo Repo full - removed restore points of decommissioned VMs (Delete from disk), 2.1TB freed. "
            "Job success.",
            "@creds,vm Guest processing credentials expired (svc_veeam rotated). Updated in Credentials "
            "Manager, green.",
            "@snap retry worked, transient vCenter timeout",
            "@wait Proxy out of task slots due to hung session; restarted Veeam services on proxy, reran.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="tls",
        runbook="tls-certificate-renewal",
        match="full",
        count=4,
        category="Security",
        cis=("LB-F5-01", "WIN-IIS-01", "lnx-web-02", "k8s-prod-cluster"),
        fills={
            "fqdn": (
                "portal.corp.example.com",
                "api.corp.example.com",
                "sftp.corp.example.com",
                "shop.example.com",
                "reports.corp.example.com",
            ),
            "issuer": (
                "DigiCert Global G2 TLS RSA SHA256 2020 CA1",
                "Corp Issuing CA 01",
                "R11 (Let's Encrypt)",
            ),
            "team": ("Web Platform", "Integration Team", "Infrastructure"),
        },
        alerts=(
            (
                "[WARNING] SSL certificate for {fqdn} expires in {days} days",
                "Certificate monitor\nHost: {fqdn}:443\nSubject: CN={fqdn}\nIssuer: {issuer}\n"
                "Not After: {notafter}\nDays remaining: {days}\nOwner (CMDB): {team}",
            ),
            (
                "Certificate expiring: {fqdn}",
                "Automated notice from TLS inventory. The certificate below expires in {days} days. "
                "Please renew.\n\nCN={fqdn}\nSerial: {serial}\nInstalled on: {host}",
            ),
        ),
        alert_share=0.5,
        titles=(
            "@exp website showing certificate expired",
            "@exp NET::ERR_CERT_DATE_INVALID on {fqdn}",
            "@renew cert renewal needed for {fqdn}",
            "@pkix API calls failing - PKIX path validation failed",
            "@exp SSL cert expired on customer portal!!",
            "@renew renew ssl certificate before {notafter}",
        ),
        bodies=(
            "@exp Customers are reporting a 'Your connection is not private' page on {fqdn}. "
            "The certificate expired {when_short}.",
            "@pkix Our integration fails with:\njavax.net.ssl.SSLHandshakeException: PKIX path building "
            "failed: "
            "sun.security.provider.certpath.SunCertPathBuilderException\nendpoint {fqdn}",
            "@renew Please renew the certificate for {fqdn}, it expires on {notafter}. Same SANs as before.",
            "@renew openssl shows notAfter={notafter_ossl} for {fqdn}. Who owns this cert?",
            "@exp Partner says our endpoint {fqdn} presents an expired cert, they've stopped sending files.",
            "@renew Got the automated email about {fqdn} expiring. The person who did it last year left. "
            "Can infra take it?",
        ),
        notes=(
            "CSR generated with same SANs, issued by DigiCert, installed full chain on F5 client SSL "
            "profile. "
            "Verified with openssl s_client.",
            "Internal CA WebServer template cert issued via certreq, IIS binding updated. Expiry updated in "
            "CMDB.",
            "Renewed, k8s secret updated with kubectl apply, ingress picked it up.",
            "@pkix Intermediate missing from fullchain.pem -> PKIX error for Java clients. Fixed chain, "
            "reload "
            "nginx.",
            "cert renewed + monitoring updated",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="nginx-502",
        runbook="nginx-502-bad-gateway",
        match="full",
        count=4,
        category="Software",
        cis=("lnx-web-02", "nginx-proxy-01"),
        fills={"probe": ("London", "Frankfurt", "Dublin")},
        alerts=(
            (
                "[ALERT] HTTP check {fqdn} returned 502",
                "Synthetic monitor: {fqdn}\nCheck: HTTPS GET /\nResult: 502 Bad Gateway\nLocation: {probe}\n"
                "Failures: 3/3 consecutive\nFirst failure: {evtime}",
            ),
        ),
        alert_share=0.3,
        titles=(
            "502 bad gateway on portal",
            "website down - 502",
            "{fqdn} 502 Bad Gateway nginx",
            "@inter intermittent 502 errors",
            "@login getting bad gateway when logging into {app}",
            "@up nginx upstream errors",
        ),
        bodies=(
            "{fqdn} shows '502 Bad Gateway nginx' for everyone since {time}.",
            "@refused,up error.log on {host}:\n{nginxts} [error] 1234#1234: *{n}{n}{n} connect() failed "
            "(111: Connection "
            'refused) while connecting to upstream, client: {ip}, server: {fqdn}, request: "GET / '
            'HTTP/1.1", '
            'upstream: "http://10.20.3.14:8080/"',
            "@inter About 1 in 3 requests to {fqdn} give 502. Refresh and it works.",
            "@login Login to {app} gives 502 bad gateway after entering credentials. Other pages load.",
            "@closed,up upstream prematurely closed connection while reading response header from upstream "
            "-- lots of "
            "these on {host} since deploy",
            "customers getting 502 on the portal, please treat as urgent",
        ),
        notes=(
            "@refused app-portal service had stopped (see journal). Restarted; 200 OK.",
            "@inter,closed One upstream node dead; marked down in upstream block, reload. App team fixing "
            "node.",
            "@login Large auth cookie -> 'upstream sent too big header'. proxy_buffer_size 16k, reload.",
            "@selinux SELinux httpd_can_network_connect off after rebuild; setsebool -P. Fixed.",
            "restarted upstream, 502 gone",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="systemd",
        runbook="systemd-service-failed-to-start",
        match="full",
        count=4,
        category="Software",
        cis=("lnx-app-07", "lnx-app-03", "lnx-batch-01"),
        fills={
            "unit": ("app-orders", "report-worker", "edi-gateway", "kafka-connect", "app-portal"),
            "st": ("1/FAILURE", "203/EXEC", "217/USER", "200/CHDIR"),
        },
        titles=(
            "@boot service won't start after reboot on {host}",
            "{unit} failed to start",
            "Job for {unit}.service failed",
            "@rate start request repeated too quickly",
            "@boot app not coming back after patching",
            "systemctl status shows failed",
        ),
        bodies=(
            "@boot After patching {host} last night {unit} didn't come up:\n\n● {unit}.service - {unit}\n"
            "   Loaded: loaded (/etc/systemd/system/{unit}.service; enabled)\n"
            "   Active: failed (Result: exit-code) since {day}\n"
            "  Process: 2211 ExecStart=/opt/{unit}/bin/start.sh (code=exited, status={st})",
            "Job for {unit}.service failed because the control process exited with error code. See "
            '"systemctl status {unit}.service" and "journalctl -xeu {unit}.service" for details.',
            "@rate,edit {unit} keeps failing: 'start request repeated too quickly'. I edited the unit file "
            "to change "
            "the port.",
            "@port journalctl says 'Address already in use' for {unit} on {host}, nothing should be on 8080",
            "@boot Our batch service {unit} doesn't start after server reboot on {day}, we start it by hand "
            "each "
            "time.",
            "@exec {unit} on {host} dead. status=203/EXEC. did someone move the jar?",
        ),
        notes=(
            "@edit Unit edited without daemon-reload. daemon-reload, reset-failed, start. Running.",
            "@port Old orphaned java process still held 8080. Killed it, service started.",
            "@exec status=203/EXEC - start.sh lost +x after deploy. chmod, started. Deploy script fixed.",
            "@boot Service was not enabled; systemctl enable. Survives reboot now.",
            "@selinux SELinux context wrong on /opt/{unit} after rsync; restorecon -Rv. OK.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="ssh",
        runbook="ssh-key-access-linux",
        match="full",
        count=4,
        category="Security",
        cis=("lnx-app-07", "lnx-build-01", "lnx-web-02"),
        titles=(
            "@denied ssh permission denied (publickey)",
            "@add add my ssh key to {host}",
            "@denied can't ssh to {host}",
            "@hostkey REMOTE HOST IDENTIFICATION HAS CHANGED",
            "@denied ssh key stopped working",
            "@add need ssh access to build servers",
        ),
        bodies=(
            "@denied $ ssh {uid}@{host}\n{uid}@{host}: Permission denied "
            "(publickey,gssapi-keyex,gssapi-with-mic).\n"
            "I have been given access apparently.",
            "@add Please add my public key to {host}:\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{keyfrag} "
            "{uid}@corp.example.com",
            "@hostkey ssh says WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED! for {host}. Is this safe?",
            "@denied,perms my key worked last week, now permission denied. I changed the permissions on my "
            "home dir to "
            "share a file with a colleague",
            "@add Need ssh access to {host} for the migration project, approved by {mgr}. I'll send my pub "
            "key.",
            "@algo,denied ssh -vvv shows 'send_pubkey_test: no mutual signature algorithm' when connecting "
            "to {host}",
        ),
        notes=(
            "@add,denied Key added via Ansible authorized_key role, access group updated. Connect OK.",
            "@perms /home/{uid} was 775 -> sshd refused (bad ownership or modes). chmod 755 home, 700 .ssh.",
            "@hostkey Server was rebuilt ({chg}); confirmed and told user to ssh-keygen -R.",
            "@algo Old RSA SHA-1 key rejected; user generated ed25519, added.",
            "@denied,add Not in lnx-app-users group; added, sss_cache -u.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="rdp",
        runbook="rdp-cannot-connect",
        match="full",
        count=4,
        category="Network",
        cis=("WIN-APP-05", "WIN-TS-02", "JUMP-01"),
        titles=(
            "cant rdp to {host}",
            "remote desktop cannot connect",
            "@auth RDP: account not authorized for remote login",
            "@credssp CredSSP error connecting to server",
            "@full all connections in use on {host}",
            "@pc remote desktop to my office pc not working",
        ),
        bodies=(
            "Remote Desktop can't connect to the remote computer for one of these reasons: ... "
            "trying {host} from JUMP-01.",
            "@auth The connection was denied because the user account is not authorized for remote login. "
            "I need to get on {host} for the deployment tonight.",
            "@credssp An authentication error has occurred. The function requested is not supported. This "
            "could be "
            "due to CredSSP encryption oracle remediation.\n\nserver: {host}",
            "@full The number of connections to this computer is limited and all connections are in use "
            "right now. "
            "Someone probably left sessions open on {host}.",
            "@pc Trying to RDP to my desktop in the office ({desktop}) from home, times out.",
            "RDP to {host} was fine yesterday, now nothing. Ping works.",
        ),
        notes=(
            "@full Two disconnected admin sessions logged off (logoff /server). Connected.",
            "@auth Added to SRV-RDP-{host} with owner approval.",
            "@down TermService stopped after patching; started and set automatic.",
            "@credssp Client missing CredSSP update - jump server patched.",
            "@pc Office desktop was powered off. Facilities switched it on, Wake-on-LAN enabled.",
            "@fw Firewall rule for 3389 from jump subnet missing on new server; added ({chg}).",
        ),
    ),
]

# ---- End-user devices, network, collaboration (full matches) --------------------------------

PRINTERS = ("PRN-3F-EAST", "PRN-2F-WEST", "PRN-GF-RECEPTION", "PRN-5F-FIN", "PRN-4F-OPS")

TOPICS += [
    Topic(
        key="printer",
        runbook="printer-offline-print-spooler",
        match="full",
        count=6,
        category="Hardware",
        cis=(*PRINTERS, "PRINT-SRV-01"),
        fills={"prn": PRINTERS},
        titles=(
            "printer not working",
            "@offline {prn} offline",
            "cant print",
            "@queue print jobs stuck in queue",
            "@offline printer says offline but its on",
            "@11b Error 0x0000011b when adding printer",
            "@floor nobody on {floor} can print",
        ),
        bodies=(
            "@offline The printer by the kitchen ({prn}) shows as offline on my laptop. It's switched on "
            "and others "
            "seem to print fine.",
            "@queue My print jobs just sit in the queue saying 'Error - Printing'. Tried deleting them, "
            "they're "
            "stuck "
            "on 'Deleting'.",
            "@11b Windows cannot connect to the printer. Operation failed with error 0x0000011b.\n\n"
            "Trying to add \\\\PRINT-SRV-01\\{prn}",
            "@floor none of us on the {floor} can print {when}. the printer display says ready",
            "cant print!! need to print contracts for a {time} meeting",
            "@jam Printer {prn} has a paper jam message but there's no paper stuck anywhere. Opened all the "
            "trays.",
            "@queue when I print nothing comes out. queue shows {n} documents waiting. printer {prn}",
        ),
        notes=(
            "@floor,queue Restarted spooler on PRINT-SRV-01 and cleared stuck jobs. Floor printing again.",
            "@offline,floor Printer IP changed after DHCP lease expired. Created reservation and updated "
            "TCP/IP port. "
            "Test page OK.",
            "@queue,offline Cleared local spool folder on user's laptop, removed and re-added queue. "
            "Working.",
            "@jam Jam sensor faulty - logged with vendor (case {vcase}), engineer replaced sensor.",
            "@11b 0x11b: applied RPC auth level fix per print team KB, printer added.",
            "@offline SNMP status disabled on port, printer no longer shows offline.",
            "@toner toner empty, replaced. not an IT issue really",
        ),
    ),
    Topic(
        key="dns",
        runbook="dns-resolution-failure",
        match="full",
        count=4,
        category="Network",
        cis=("DC01", "DC02", "DNS"),
        fills={"host": ("lnx-app-03", "WIN-APP-05", "lnx-web-02", "lnx-batch-01")},
        titles=(
            "@client cant reach intranet - site cant be reached",
            "DNS not resolving internal names",
            "@server server can't resolve hostnames",
            "@client DNS_PROBE_FINISHED_NXDOMAIN on internal sites",
            "name resolution failing for {fqdn}",
            "@client websites not loading but teams works",
        ),
        bodies=(
            "@client Intranet shows 'This site can't be reached - server IP address could not be found'. "
            "If I use the IP it works.",
            "nslookup {fqdn}\nServer:  UnKnown\nAddress:  10.10.1.11\n\n*** UnKnown can't find {fqdn}: "
            "Non-existent domain\n\nworks from other pcs",
            "@server On {host}: curl: (6) Could not resolve host: {fqdn}\nping by IP ok. started after "
            "network "
            "change "
            "last night?",
            "@client Several users in {site} getting DNS_PROBE_FINISHED_NXDOMAIN for internal sites {when}.",
            "@server app server logs: 'Temporary failure in name resolution' when connecting to {fqdn}. "
            "intermittent, maybe 1 in 5.",
            "@stale We moved {fqdn} to a new IP yesterday but half the users still go to the old one.",
        ),
        notes=(
            "DNS Server service on DC02 hung (no answers on 53). Restarted, dcdiag /test:dns clean.",
            "@stale Stale A record for {fqdn} pointing at old IP; updated record, cleared server cache.",
            "@client Client had home router DNS while on VPN. Reconnected VPN, flushdns, OK.",
            "@partner Conditional forwarder for partner zone missing after DC rebuild, re-added.",
            "@client ipconfig /flushdns fixed it. Cause: cached negative response.",
        ),
    ),
    Topic(
        key="dhcp",
        runbook="dhcp-no-ip-address-apipa",
        match="full",
        count=4,
        category="Network",
        cis=("DHCP-01", "SW-3F-ACC-02", "SW-2F-ACC-01"),
        fills={"host": ("lnx-lab-11", "lnx-kiosk-02")},
        titles=(
            "no network - 169.254 address",
            "network cable plugged in but no internet",
            "@desk Unidentified network on desk in {site}",
            "@many Several PCs not getting IP address on {floor}",
            "@many DHCP scope full?",
            "@dock laptop not getting ip on docking station",
        ),
        bodies=(
            "@dock ipconfig shows {apipa}, no internet on the wired connection. Wi-Fi works.",
            "@desk My PC says 'Unidentified network - No internet access'. Plugged into the floor port at "
            "desk "
            "{desk}.",
            "@many About {n} people on the {floor} can't get on the network this morning. All showing "
            "169.254 "
            "addresses.",
            "Autoconfiguration IPv4 Address . . : {apipa}(Preferred)\nSubnet Mask . . . . . . . . . . . : "
            "255.255.0.0\nDefault Gateway . . . . . . . . . :\ntried ipconfig /renew - 'An error occurred "
            "while renewing interface Ethernet : unable to contact your DHCP server. Request has timed out.'",
            "@many New starters' laptops get no IP in the training room. Might be because we added 20 extra "
            "laptops?",
            "@linux Linux box {host} lost its IP after reboot, NetworkManager: 'IP configuration could not "
            "be "
            "reserved (no available address, timeout)'.",
        ),
        notes=(
            "@many Scope 10.30.4.0/24 at 100%. Reduced lease to 1 day, removed declined leases. Users got "
            "addresses.",
            "@port,desk Switch port err-disabled (port-security). Network cleared it, PC got address.",
            "@many ip helper-address missing on new VLAN SVI after switch replacement. Added by Network "
            "({chg}).",
            "@dock Dock NIC driver outdated, updated Realtek USB GbE driver, DHCP fine.",
            "@many,linux DHCP service hung on DHCP-01 after failover partner reboot, restarted DHCPServer.",
        ),
    ),
    Topic(
        key="wifi",
        runbook="wifi-8021x-corporate-cannot-join",
        match="full",
        count=4,
        category="Network",
        cis=("CORP-SECURE", "NPS-01", "WLC-01"),
        fills={"rc": ("16", "48", "265", "22")},
        titles=(
            "cant connect to corporate wifi",
            "CORP-SECURE not working, guest works",
            "@prompt wifi keeps asking for username and password",
            "@reimage laptop won't join wifi after rebuild",
            "Can't connect to this network - CORP-SECURE",
            "no wifi in {site} for my laptop",
        ),
        bodies=(
            "My laptop {laptop} won't connect to CORP-SECURE, just says 'Can't connect to this network'. "
            "Guest wifi works but then I can't get to shared drives.",
            "@prompt wifi keeps prompting me for a username and password which it never did before. "
            "I've typed mine in, doesn't work.",
            "@reimage Laptop was reimaged yesterday and now it can't join the office wifi. Cable works.",
            "@nps NPS denied access for host/{laptop}.corp.example.com, reason code {rc}. see NPS-01 event "
            "6273",
            "@cert Just back in the {site} after months of home working, laptop can't get on wifi.",
            "@new Cant connect to corp wifi on my new laptop, colleagues can. Error says we couldn't "
            "connect to "
            "this network.",
        ),
        notes=(
            "@cert,nps Machine cert expired (device offline 2 months). Connected via cable, certutil "
            "-pulse, new cert, "
            "Wi-Fi OK.",
            "@reimage,nps,new Computer not in GG-WiFi-Devices after reimage. Added, rebooted after 15 min, "
            "connected.",
            "@new,reimage Wi-Fi profile missing - Intune sync pushed CORP-SECURE profile.",
            "@prompt Deleted corrupt profile (netsh wlan delete profile), re-synced policy. OK.",
            "Intel AX211 driver updated from Software Center, stable now.",
        ),
    ),
    Topic(
        key="teams-av",
        runbook="teams-audio-camera-not-working",
        match="full",
        count=5,
        category="Software",
        cis=("Microsoft Teams",),
        fills={
            "headset": (
                "Jabra Evolve2 65",
                "Poly Voyager Focus 2",
                "Logitech Zone Wireless",
                "Jabra Evolve 40",
                "AirPods Pro",
            ),
        },
        titles=(
            "@mic people cant hear me on teams",
            "@cam Teams camera not working",
            "@spk no sound in teams meetings",
            "@mic,spk headset not working in Teams only",
            "@cam Teams: We can't find a camera",
            "@quality echo / robotic audio on teams calls",
            "@mic mic not working in meetings!!",
        ),
        bodies=(
            "@mic In Teams meetings nobody can hear me. The mic icon isn't muted. My {headset} works fine "
            "on Zoom "
            "with customers.",
            "@cam Camera shows black in Teams. The little light doesn't come on. {laptop}",
            "@cam Teams says 'We can't find a camera' even though the laptop has one. Tried restarting.",
            "@spk I can't hear anything in Teams calls but YouTube works. Speaker in Teams settings shows my "
            "dock's audio.",
            "@quality {when} my voice sounds robotic/cuts out for others. Working from home on wifi.",
            "@mic mic not working in teams meetings, says 'Your mic is muted in system settings'. "
            "I haven't muted anything",
            "@cam Your camera is being used by another app. Close the other app and try again.\n"
            "-- no other app open that I can see",
        ),
        notes=(
            "@mic Windows privacy 'Let desktop apps access your microphone' was off after update. Enabled, "
            "fixed.",
            "@cam Camera privacy F-key (F10) was toggled. User hadn't noticed. ok",
            "@spk,mic Teams used dock audio instead of headset. Set correct devices in Teams + Windows "
            "defaults.",
            "@cam Reset new Teams (Advanced options > Reset), camera detected after.",
            "@cam Zoom process holding camera in background, closed Zoom, Teams camera fine.",
            "@quality,mic {headset} firmware updated, audio dropouts gone.",
            "@quality Home wifi jitter (call analytics 12% packet loss). Advised cable.",
        ),
    ),
    Topic(
        key="teams-signin",
        runbook="teams-cannot-sign-in",
        match="full",
        count=4,
        category="Software",
        cis=("Microsoft Teams",),
        fills={"terr": ("caa70004", "caa20002", "0xCAA82EE2", "0xCAA70007", "80080300")},
        titles=(
            "teams wont sign in",
            "@err Teams error {terr}",
            "@loop Teams login loop",
            "@white teams just shows white screen",
            "@err We couldn't sign you in - Teams",
            "@web Teams desktop not working, web works",
        ),
        bodies=(
            "@err Teams says 'We couldn't sign you in. If you continue to see this error please contact your "
            "administrator' error code {terr}",
            "@loop Teams keeps going back to the sign in screen after I enter my email.",
            "@white After restart Teams opens as a blank white window, nothing else.",
            "@web Teams desktop won't sign in but teams.microsoft.com works in Edge. Outlook is fine.",
            "@err getting error {terr} in teams {when}. rebooted. still broken",
            "@new new starter {user} cannot sign in to Teams, Outlook works. Account created yesterday.",
        ),
        notes=(
            "Reset Teams app (Get-AppxPackage MSTeams | Reset-AppxPackage), sign in OK.",
            "@loop,web AzureAdPrt NO in dsregcmd /status; dsregcmd /refreshprt + sign out/in. Teams works.",
            "@err Proxy TLS inspection breaking Teams auth on {site} network - bypass added.",
            "@new Licence assigned yesterday, Teams provisioning completed overnight. Works now.",
            "@loop,err Cleared msteams creds from Credential Manager, signed in.",
        ),
    ),
    Topic(
        key="onedrive",
        runbook="onedrive-sync-stuck",
        match="full",
        count=5,
        category="Software",
        cis=("OneDrive for Business",),
        fills={"oerr": ("0x8004de40", "0x80070005", "0x8007016a", "0x8004de90")},
        titles=(
            "onedrive not syncing",
            "@proc OneDrive stuck on processing changes",
            "@name red crosses on files in onedrive",
            "@err OneDrive error {oerr}",
            "@other files not showing on my other pc",
            "@proc sync pending for days",
        ),
        bodies=(
            "@proc OneDrive has been 'Processing changes' for {n} hours, nothing uploads.",
            "@name I have red X on a bunch of files. View sync problems says 'The file name is invalid' for "
            "files "
            "like 'Q3: budget?.xlsx'",
            "@err Error {oerr} in OneDrive. Can't open files, they show as cloud only and won't download.",
            "@other Saved a file on my desktop PC this morning, it's not on my laptop or in the browser.",
            "@pause onedrive icon has a pause sign and red. i didnt pause it. my docs folder not backing up",
            "@big Synced the whole {dept} SharePoint library and now OneDrive is stuck and laptop is slow. "
            "~400k files.",
        ),
        notes=(
            "@name Renamed files with invalid chars (: ?), sync resumed.",
            "onedrive.exe /reset, resynced OK.",
            "@err Files On-Demand had been disabled; re-enabled, rebooted.",
            "@big,proc Stopped sync of huge library, added shortcut to My files instead. Sync caught up.",
            "Unlinked and relinked PC. Duplicates cleaned up with user.",
            "@err Proxy blocking *.sharepoint.com for this subnet; network fixed.",
        ),
    ),
    Topic(
        key="sharepoint",
        runbook="sharepoint-access-denied",
        match="full",
        count=4,
        category="Software",
        cis=("SharePoint Online",),
        fills={
            "spsite": (
                "Finance",
                "HR-Policies",
                "Sales-EMEA",
                "ProjectAtlas",
                "Legal-Contracts",
                "Marketing-Assets",
            ),
        },
        titles=(
            "access denied on sharepoint",
            "@req need access to {spsite} site",
            "Sorry, you don't have access - sharepoint",
            "@link sharing link not working",
            "@lib can't open folder on {spsite} site",
            "You need permission to access this site",
        ),
        bodies=(
            "Getting 'Access Denied - You need permission to access this site' on "
            "https://corp.sharepoint.com/sites/{spsite}. My manager {mgr} said I should have access.",
            "@lib I can open the {spsite} site but the 'Contracts' library says I don't have access.",
            "@link Link someone sent me says 'This link has been removed or you don't have access'.",
            "@move Moved from {dept} to {dept2} last week, now can't open the {spsite} SharePoint. Clicked "
            "request "
            "access twice.",
            "@req Please give {user} edit rights on the {spsite} site. Approved by site owner (cc'd).",
            "@req Sorry, you don't have access. Request access? - I did that on {day}, no reply.",
        ),
        notes=(
            "@req,move Owner approved pending access request. User can open site.",
            "@req,move Added to {spsite} Members M365 group with owner approval in ticket.",
            "@lib Library has broken inheritance; owner granted Contribute on Contracts library.",
            "@link Sharing link expired (30-day policy). Owner re-shared with specific people.",
            "@req Access requests went to a leaver's mailbox - updated to current owner, approved.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="intune",
        runbook="intune-autopilot-enrolment-failure",
        match="full",
        count=4,
        category="Hardware",
        cis=("Intune", "Autopilot"),
        fills={
            "model": (
                "Dell Latitude 7450",
                "Lenovo ThinkPad T14 Gen 5",
                "HP EliteBook 840 G11",
                "Surface Laptop 6",
            ),
            "aerr": ("80180018", "0x800705b4", "0x80180014", "0x81036502"),
        },
        titles=(
            "new laptop setup fails",
            "@err autopilot error {aerr}",
            "@tpm stuck on 'device preparation' on new laptop",
            "new starter laptop - something went wrong",
            "@esp Enrollment status page stuck at apps",
            "@hash laptop boots to normal windows setup not company one",
        ),
        bodies=(
            "@err New {model} for {user} starting {day}. During setup it says 'Something went wrong' error "
            "{aerr}.",
            "@esp Enrollment Status Page stuck on 'Apps (3 of 9)' for over 2 hours. Serial {serial}.",
            "@limit I got my new laptop by courier, when I sign in it says 'Your account was not set up on "
            "this "
            "device "
            "because device management could not be enabled'.",
            "@hash Laptop from the reseller goes to the normal Windows 'Is this the right country or "
            "region?' "
            "screen, not our company login.",
            "@stale,err Reset {laptop} for a new user, now autopilot fails with 0x80180014",
            "@tpm provisioning a batch of {n} laptops in the build room, 2 of them hang at Device "
            "preparation > "
            "Securing your hardware.",
        ),
        notes=(
            "@hash,err Hash not imported by reseller. Collected with Get-WindowsAutopilotInfo -Online, "
            "profile "
            "assigned, "
            "rebuild OK.",
            "@stale Stale Entra/Intune record from previous owner deleted; Autopilot completed.",
            "@esp Win32 app detection rule wrong -> ESP timeout. Fixed detection, reset device, ESP passed.",
            "@limit,err User hit device limit (15). Removed old devices, enrolled fine.",
            "@tpm TPM attestation failure - TPM firmware update then reset. Passed.",
        ),
    ),
    Topic(
        key="bitlocker",
        runbook="bitlocker-recovery-key",
        match="full",
        count=4,
        category="Security",
        cis=("{laptop}", "BitLocker"),
        titles=(
            "bitlocker recovery key needed",
            "laptop asking for recovery key",
            "blue screen asking for bitlocker key",
            "@bios BitLocker recovery after BIOS update",
            "can't start laptop - enter recovery key",
            "@repeat bitlocker keeps asking every boot",
        ),
        bodies=(
            "Laptop shows 'BitLocker recovery - Enter the recovery key for this drive'. Key ID starts with "
            "{keyid}.",
            "@bios After the Dell update last night my laptop wants a 48 digit recovery key. I'm at home, "
            "please "
            "call me on my mobile.",
            "@agent User in {site} needs bitlocker recovery key for {laptop}. Key ID: {keyid}. ID verified "
            "by "
            "manager.",
            "@repeat Entered the recovery key yesterday, today it asks again. Happens every time I start it "
            "on the "
            "dock.",
            "blue screen says recovery key needed, press esc for more options. I don't have a key??",
            "@repair Laptop came back from repair (new motherboard?) and now it's asking for the bitlocker "
            "key",
        ),
        notes=(
            "Identity verified (manager callback). Key read out from Intune, key rotated after use.",
            "@repeat Repeat prompts: boot order had PXE first after BIOS update. Restored order, reset TPM "
            "protector. "
            "Two clean boots.",
            "@bios Key provided from Entra device record. Suspend-BitLocker step added to BIOS update "
            "package.",
            "@repair Motherboard replaced -> new TPM. Key given, manage-bde -protectors -add C: -tpm. OK.",
            "key provided",
        ),
    ),
    Topic(
        key="winupdate",
        runbook="windows-update-stuck-failed",
        match="full",
        count=4,
        category="Software",
        cis=("Windows Update", "Intune", "WSUS-01"),
        fills={"werr": ("0x80070002", "0x8024402c", "0x800f0922", "0x80073712", "0x800f081f")},
        titles=(
            "windows update stuck",
            "@err update failing {werr}",
            "@undo Laptop stuck on 'undoing changes'",
            "@kb can't install {kb}",
            "@dl updates stuck at 0% downloading",
            "@comp Intune says device non-compliant - missing updates",
        ),
        bodies=(
            "@dl Windows Update has been on 'Downloading - 0%' for {n} days.",
            "@err,kb Update {kb} fails with error {werr}. Tried 3 times.",
            "@undo Every reboot it says 'We couldn't complete the updates. Undoing changes. Don't turn off "
            "your "
            "computer' and takes 30 mins.",
            "@comp,kb Getting an email that my device is non-compliant because of OS version. Update "
            "history shows "
            "{kb} failed.",
            "@feature,err Feature update to 24H2 fails at 61% with {werr}",
            "@vpn cumulative update keeps failing, pc rebooted many times, now at home on VPN",
        ),
        notes=(
            "@dl,err,undo Reset WU components (SoftwareDistribution/catroot2), update installed.",
            "@err,kb,undo DISM RestoreHealth + sfc fixed component store corruption. {kb} installed.",
            "@vpn 0x800f0922 on VPN - installed in office on wired, fine.",
            "@feature Freed 25GB, feature update completed.",
            "@kb,comp Manually installed {kb} from catalog with wusa. Compliant next sync.",
        ),
    ),
    Topic(
        key="slow-laptop",
        runbook="slow-laptop-performance",
        match="full",
        count=5,
        category="Hardware",
        cis=("{laptop}",),
        titles=(
            "laptop very slow",
            "computer running slow",
            "@boot pc takes 15 min to start",
            "everything freezing",
            "@update laptop slow since update",
            "slow laptop - can't work",
            "@fan fan loud and pc slow",
        ),
        bodies=(
            "My laptop is super slow, takes ages to open anything. Outlook freezes constantly.",
            "@boot takes 15 minutes from turning on to being able to use it. this is every morning",
            "@mem Task manager shows disk 100% and memory 95%. I only have Outlook, Teams and Chrome open "
            "(ok maybe 40 tabs).",
            "@update,fan Since the update on {day} the laptop is very slow. Fan runs all the time even on "
            "idle.",
            "@old laptop {laptop} is 5 years old, very slow, can I get a new one?",
            "everything freezes for a few seconds every couple of minutes. happens on battery and on the "
            "dock.",
            "PC slow. thanks",
        ),
        notes=(
            "@boot Uptime 41 days. Restarted, disabled 6 startup apps. User happy.",
            "Using 30W phone charger -> CPU throttled. Supplied 65W charger.",
            "SMART warning on SSD. Replaced SSD and re-imaged.",
            "@old,mem 8GB RAM, below standard. Hardware refresh {ritm} raised, loan laptop provided.",
            "@mem,fan Defender scan + OneDrive initial sync running; finished after an hour, normal now.",
            "@update BIOS + driver updates via Dell Command Update, Balanced power mode. Better.",
        ),
    ),
    Topic(
        key="browser-cert",
        runbook="browser-certificate-error",
        match="full",
        count=4,
        category="Software",
        cis=("Microsoft Edge", "Google Chrome", "Corp Proxy"),
        fills={"wrongdate": ("01/01/2020", "14/03/2025", "02/02/2019")},
        titles=(
            "your connection isn't private error",
            "@ca NET::ERR_CERT_AUTHORITY_INVALID on every site",
            "certificate error in chrome",
            "@ff firefox says potential security risk ahead",
            "@cn,site cert error on internal site",
            "@date NET::ERR_CERT_DATE_INVALID everywhere",
        ),
        bodies=(
            "@ca Every website I open shows 'Your connection isn't private' NET::ERR_CERT_AUTHORITY_INVALID. "
            "Colleagues are fine.",
            "@ff Firefox: Warning: Potential Security Risk Ahead ... SEC_ERROR_UNKNOWN_ISSUER on all sites. "
            "Edge works.",
            "@date All sites give NET::ERR_CERT_DATE_INVALID. (my laptop clock shows {wrongdate}, is that "
            "related?)",
            "@cn When I open http://intranet I get NET::ERR_CERT_COMMON_NAME_INVALID but the link from the "
            "portal "
            "works",
            "@site chrome cert error on {fqdn} only, says cert not valid. can i just click proceed?",
            "@ca After laptop rebuild, all https pages show a certificate warning through the proxy.",
        ),
        notes=(
            "@date Laptop clock wrong (CMOS battery). Set automatic time + w32tm /resync. Fixed.",
            "@ca Corp Proxy Root CA missing after rebuild. gpupdate /force installed it.",
            "@ff Firefox enterprise roots policy applied. OK.",
            "@cn User used short name; told to use FQDN link. No issue with cert.",
            "@site Site cert actually expired - passed to server owner ({ref}).",
        ),
    ),
    Topic(
        key="software",
        runbook="software-center-install-request",
        match="full",
        count=5,
        category="Software",
        cis=("Software Center", "SCCM", "Intune"),
        fills={
            "sw": (
                "Visio",
                "Power BI Desktop",
                "Notepad++",
                "Adobe Acrobat Pro",
                "7-Zip",
                "Tableau Desktop",
                "MS Project",
                "Python 3.12",
                "Postman",
                "DBeaver",
            ),
            "serr": ("0x87D00607", "0x87D00324", "0x80070643", "0x87D01106"),
            "reason": ("a client project", "month end", "the new reporting work", "training next week"),
        },
        titles=(
            "@req please install {sw}",
            "@fail software center install failed",
            "@req need {sw} on my laptop",
            "@cat {sw} not in software center",
            "@dl install stuck downloading 0%",
            "@fail error {serr} in software center",
        ),
        bodies=(
            "@req could you install {sw} on my laptop please, manager approved.",
            "@fail Software Center says 'Installation failed' for {sw} with {serr}.",
            "@cat {sw} isn't listed in Software Center, how do I get it? I need it for {reason}.",
            "@dl Install of {sw} stuck at 'Downloading 0%' since yesterday.",
            "@req Need admin rights to install {sw}. Or can someone install it for me?",
            "@fail software center: The software change returned error code {serr}. Tried twice",
        ),
        notes=(
            "@req Added user to deployment group, installed from Software Center.",
            "@req Licensed product - manager approval received, licence assigned, installed.",
            "@dl,fail Content not on local DP, SCCM team redistributed. Installed.",
            "@fail Pending reboot blocked the installer. Rebooted, install OK.",
            "@cat Not in catalogue - raised new software request {ritm} for packaging + security review.",
            "@fail Detection rule wrong for this version, packaging team fixed. Installed.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="fileshare",
        runbook="file-share-access-denied-ntfs",
        match="full",
        count=4,
        category="Security",
        cis=("fs01", "WIN-FS-02"),
        fills={
            "share": ("Finance", "HR", "Projects", "Operations", "Sales"),
            "sub": ("Payroll", "2026", "Budgets", "Contracts", "Archive"),
        },
        titles=(
            "access denied on shared drive",
            "cant open folder on S drive",
            "\\\\fs01\\{share} not accessible",
            "@req need access to {share} folder",
            "@write permission error when saving file to share",
            "@write 0x80070005 copying files to network share",
        ),
        bodies=(
            "\\\\fs01\\{share} is not accessible. You might not have permission to use this network "
            "resource. "
            "Access is denied.",
            "@write I can open the {share} folder but can't save - 'You need permission to perform this "
            "action'.",
            "@req Please give {user} read/write on \\\\fs01\\{share}\\{sub}. Approved by folder owner {mgr}.",
            "@restructure After the folder restructure on {day} our team can't get into {sub} any more.",
            "@write Error 0x80070005: Access is denied when copying files into S:\\{share}",
            "@move I moved into the {dept} team, still can't see their folder on S:",
        ),
        notes=(
            "@req,move,write Added to FS-{share}-RW with owner approval; user logged off/on.",
            "@restructure Inheritance broken during restructure; File Services restored ACL from icacls "
            "backup.",
            "@move,req Group added but token stale - klist purge + reconnect drive.",
            "@write Share permission only Read; NTFS had Modify. Share perms fixed to Change for "
            "Authenticated "
            "Users.",
            "@req Owner declined access, ticket closed.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="mapped-drive",
        runbook="mapped-drive-missing",
        match="full",
        count=4,
        category="Inquiry / Help",
        cis=("fs01", "WIN-FS-02"),
        titles=(
            "S drive missing",
            "@h my H drive disappeared",
            "@redx network drives red x",
            "@redx could not reconnect all network drives",
            "@vpn mapped drives not there when working from home",
            "@new can't see shared drive after laptop swap",
        ),
        bodies=(
            "My S: drive isn't there anymore in This PC.",
            "@redx Getting 'Could not reconnect all network drives' every morning and drives have a red X.",
            "@vpn When I'm at home on VPN I don't have my S and H drives, in office they're fine.",
            "@inuse Tried mapping it myself and got 'The local device name is already in use'.",
            "@new got a new laptop ({laptop}) and none of my network drives are there",
            "@h H: drive gone {when}. My files are on there!",
        ),
        notes=(
            "@vpn VPN connected after logon so GPO drive maps didn't run. Showed user 'Map drives' shortcut, "
            "gpupdate.",
            "@inuse,redx Stale mapping removed (net use S: /delete), remapped.",
            "Not in GPO-Drive-S-Shared group after team move; added.",
            "@h HomeDirectory attribute empty on new account - set to \\\\fs01\\home$\\{uid}.",
            "@redx drive back after reboot",
        ),
    ),
    Topic(
        key="dock",
        runbook="monitor-docking-station-not-detected",
        match="full",
        count=4,
        category="Hardware",
        cis=("{laptop}", "Dell WD22TB4", "Lenovo USB-C Dock"),
        fills={"dockm": ("Dell WD22TB4", "Lenovo USB-C Dock", "HP USB-C Dock G5", "Dell WD19S")},
        titles=(
            "monitors not working",
            "docking station not detected",
            "@second second screen no signal",
            "@hot dock not working at hot desk",
            "@update external monitor black after update",
            "@usb usb and monitors on dock dead",
        ),
        bodies=(
            "Both monitors say 'No signal' when I plug into the dock. Laptop charges though.",
            "@second Only one of my two monitors works on the {dockm}.",
            "@hot,usb Hot desk {desk} in {site} - dock doesn't do anything, keyboard/mouse don't work.",
            "@update After Windows update yesterday external monitor stays black.",
            "@usb Dock lights up but network through dock not working and screens flicker.",
            "@second second monitor not detected. tried different cable",
        ),
        notes=(
            "Dock firmware updated, power-cycled dock. Both screens OK.",
            "@second Laptop supports only 2 external displays in total; explained.",
            "@usb,update DisplayLink driver missing; installed from Software Center.",
            "@hot,usb Dock faulty, swapped from stock.",
            "@second monitor input was set to HDMI not DP",
        ),
    ),
]

# ---- Partial matches: a related runbook helps, but it is not the exact fix ------------------

TOPICS += [
    Topic(
        key="teams-screenshare",
        runbook="teams-audio-camera-not-working",
        match="partial",
        count=4,
        category="Software",
        cis=("Microsoft Teams",),
        titles=(
            "cant share screen in teams",
            "@black Teams screen sharing black for others",
            "@grey share button greyed out in teams meeting",
            "@frozen others see frozen screen when I present",
            "teams sharing not working",
            "@control can't give control in Teams",
        ),
        bodies=(
            "@black When I share my screen in Teams, everyone else just sees a black screen.",
            "@grey Share button is greyed out in meetings with external people.",
            "@frozen Screen sharing freezes for attendees after a few seconds, my audio is fine.",
            "@frozen I share a window (PowerPoint) and people say it's not updating.",
            "can't share screen in teams {when} - nothing happens when I click share",
            "@control In Teams meetings I can't 'give control' to my colleague, option missing.",
        ),
        notes=(
            "@black,frozen GPU driver updated (hardware acceleration issue), sharing works.",
            "@grey Meeting options restricted sharing to organiser; organiser changed 'Who can present'.",
            "@black,frozen Teams reset + GPU driver; sharing fine.",
            "@control Give control disabled by policy for external participants; explained.",
            "Reset Teams cache; share works.",
        ),
    ),
    Topic(
        key="teams-presence",
        runbook="teams-cannot-sign-in",
        match="partial",
        count=4,
        category="Software",
        cis=("Microsoft Teams",),
        titles=(
            "@pres teams status stuck on away",
            "@chat teams chat messages not arriving",
            "@notif teams notifications not showing",
            "@pres presence wrong in teams",
            "@cal teams calendar tab missing",
            "@pres teams keeps saying I'm offline",
        ),
        bodies=(
            "@pres My Teams status is stuck on Away even when I'm active.",
            "@chat Messages arrive on my phone but not in Teams desktop until I restart it.",
            "@notif No notifications at all in Teams {when}. Focus assist is off.",
            "@pres Teams shows me as Offline to everyone though I'm in meetings.",
            "@cal The Calendar icon disappeared from the left side in Teams.",
            "@chat teams chat slow / messages appear 10 min late",
        ),
        notes=(
            "@pres,chat Reset new Teams client, presence updates now.",
            "@cal Calendar missing because mailbox still on-prem for this user; mailbox migrated.",
            "@notif Windows notification setting for Teams was off.",
            "@pres,chat Sign out/in of Teams fixed presence.",
        ),
    ),
    Topic(
        key="skype-legacy",
        runbook="teams-cannot-sign-in",
        match="partial",
        count=3,
        category="Software",
        cis=("Skype for Business", "Microsoft Teams"),
        titles=(
            "@signin skype for business wont sign in",
            "@signin Lync can't sign in - server temporarily unavailable",
            "@join customer sent skype meeting link, can't join",
            "@install need skype for business installed",
            "@cert old Lync client on my pc keeps popping up errors",
            "@signin skype for business presence not working",
        ),
        bodies=(
            "@signin Skype for Business says 'Can't sign in. The server is temporarily unavailable.'",
            "@join External partner sent a Skype meeting invite. Can't join from my laptop.",
            "@cert I still have Lync 2013 on my PC and it pops up 'There was a problem verifying the "
            "certificate "
            "from the server' every morning.",
            "@install Can someone install Skype for Business? Our supplier still uses it.",
            "@signin skype won't sign in since we moved offices",
            "@signin Lync keeps asking for password",
        ),
        notes=(
            "@signin,cert SfB decommissioned; uninstalled legacy Lync client, confirmed Teams sign-in works.",
            "@join,install Partner runs on-prem SfB; user joined via web app. Advised Teams federation.",
            "@cert,install,signin Lync removed via Software Center uninstall.",
        ),
    ),
    Topic(
        key="calendar-delegate",
        runbook="shared-mailbox-access",
        match="partial",
        count=4,
        category="Inquiry / Help",
        cis=("Exchange Online",),
        titles=(
            "@deleg give PA access to my calendar",
            "@deleg delegate access for {mgr}'s calendar",
            "@view can't see boss's calendar details",
            "@deleg meeting invites should go to assistant",
            "calendar permission request",
            "@sob cannot accept meetings on behalf of manager",
        ),
        bodies=(
            "@deleg Please give my assistant {user} editor access to my calendar and let them receive "
            "meeting "
            "invites.",
            "@view I can see {mgr}'s calendar but only free/busy, need to see details.",
            "@sob Delegate access: I get 'You do not have permission to send on behalf of' when accepting "
            "for "
            "{mgr}.",
            "@deleg Can the meeting requests for the director go to me and not them?",
            "@deleg New EA needs delegate on 3 calendars: {mgr} and two others (names in attachment).",
            "@view I shared my calendar but my colleague says it doesn't show up.",
        ),
        notes=(
            "@deleg Add-MailboxFolderPermission user:\\Calendar -AccessRights Editor -SharingPermissionFlags "
            "Delegate.",
            "@deleg Set delegate via Outlook File > Account Settings > Delegate Access with user.",
            "@view Changed calendar permission from AvailabilityOnly to Reviewer.",
            "@sob GrantSendOnBehalfTo added on manager's mailbox.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="outlook-search",
        runbook="outlook-profile-corrupt-repair",
        match="partial",
        count=4,
        category="Software",
        cis=("Microsoft Outlook",),
        titles=(
            "outlook search not working",
            "search returns no results in outlook",
            "@old outlook search only shows old emails",
            "We're having trouble fetching results from the server",
            "can't find emails with search",
            "outlook search is greyed out",
        ),
        bodies=(
            "Searching in Outlook returns nothing even for emails I can see in the inbox.",
            "@old Outlook search only finds emails older than 3 months. Recent ones missing.",
            "Search says 'We're having trouble fetching results from the server...'",
            "search in outlook stopped working after windows update.",
            "instant search greyed out, says indexing not complete.",
            "search works in OWA not desktop",
        ),
        notes=(
            "Rebuilt Windows Search index (Indexing Options > Advanced > Rebuild). Search OK next day.",
            "Outlook not in indexed locations; added.",
            "New profile as last resort; search fine.",
            "@old Cached mode was 3 months - extended to 12 months.",
        ),
    ),
    Topic(
        key="scan-to-email",
        runbook="printer-offline-print-spooler",
        match="partial",
        count=4,
        category="Hardware",
        cis=PRINTERS,
        fills={"prn": PRINTERS},
        titles=(
            "@email scan to email not working",
            "@email,addr scanner won't send to my email",
            "@folder MFD scan to folder fails",
            "scanning error on {prn}",
            "@auth scan to email stopped after password change?",
            "@email scans not arriving",
        ),
        bodies=(
            "@email Scan to email on {prn} says 'SMTP connection error' / 'Send failed'.",
            "@email I scan documents on {prn} and never receive them.",
            "@folder Scan to folder gives 'Cannot connect to server' on {prn}, printing works fine.",
            "@auth The copier shows error when scanning: Authentication failed (SMTP 535 5.7.139).",
            "@email scans stopped arriving since {day}",
            "@addr can the scanner send to my new email address?",
        ),
        notes=(
            "@auth SMTP AUTH disabled for scanner account (5.7.139); moved MFD to SMTP relay connector.",
            "@folder Scan-to-folder service account password expired; updated on device.",
            "@addr Address book on MFD had old address; updated.",
            "@email Relay IP changed; MFD SMTP server setting updated.",
        ),
    ),
    Topic(
        key="k8s-pending",
        runbook="k8s-pod-crashloopbackoff",
        match="partial",
        count=4,
        category="Software",
        cis=("k8s-prod-cluster", "k8s-stg-cluster"),
        fills={
            "ns": ("payments", "checkout", "orders", "identity", "reporting"),
            "deploy": ("payments-api", "checkout-web", "orders-worker", "auth-proxy", "report-gen"),
        },
        titles=(
            "pods stuck in Pending",
            "@cpu 0/6 nodes are available: insufficient cpu",
            "FailedScheduling in {ns}",
            "new pods not scheduling",
            "@pvc pvc pending, pod won't start",
            "@hpa hpa scaled up but pods pending",
        ),
        bodies=(
            "@cpu Warning  FailedScheduling  default-scheduler  0/6 nodes are available: 3 Insufficient cpu, "
            "3 node(s) had untolerated taint node-role.kubernetes.io/control-plane.",
            "{deploy} pods Pending for 20 min after scaling to {n} replicas",
            "@pvc pod has unbound immediate PersistentVolumeClaims, {pod} status Pending",
            "@hpa HPA scaled {deploy} but half the pods are Pending in {ns}",
            "@affinity after node pool upgrade new pods don't schedule - node(s) didn't match Pod's node "
            "affinity/selector",
            "kubectl get pods shows Pending, no events? ns {ns}",
        ),
        notes=(
            "@cpu,hpa Cluster autoscaler max nodes reached; raised max from 6 to 9.",
            "@cpu,hpa Requests too high (4 CPU per pod); right-sized in chart.",
            "@pvc StorageClass name typo in PVC; fixed.",
            "@affinity Node selector referenced old node pool label; updated values.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="vpn-slow",
        runbook="vpn-anyconnect-cannot-connect",
        match="partial",
        count=4,
        category="Network",
        cis=("vpn-gw-01", "vpn-gw-02"),
        fills={"subnet": ("10.50.0.0/16 lab", "AWS VPC", "DR site")},
        titles=(
            "@slow vpn very slow",
            "@reach connected to vpn but cant reach internal sites",
            "@reach vpn connected but no access to {fqdn}",
            "@slow vpn slow in the afternoons",
            "@reach vpn connects but shared drives not available",
            "@teams teams calls poor on vpn",
        ),
        bodies=(
            "@slow VPN connects fine but everything is really slow, file copies take forever.",
            "@reach I'm connected to VPN (it says connected) but {fqdn} doesn't load.",
            "@slow VPN drops to ~1 Mbps in the afternoons.",
            "@reach Connected on AnyConnect but can't reach the S: drive or intranet, internet ok.",
            "@teams With vpn on, Teams calls break up, without vpn fine.",
            "@reach can't reach the new {subnet} range over vpn, colleagues in office can",
        ),
        notes=(
            "@reach New subnet not in split-tunnel include list; network added route to VPN profile.",
            "@slow ISP issue at user's home - speedtest without VPN also slow.",
            "@teams Teams media excluded from tunnel per policy; user had old client profile, updated.",
            "@slow User pinned to vpn-gw-02 which was at capacity; load balanced.",
        ),
    ),
    Topic(
        key="nginx-504",
        runbook="nginx-502-bad-gateway",
        match="partial",
        count=4,
        category="Software",
        cis=("lnx-web-02", "nginx-proxy-01"),
        titles=(
            "@report 504 gateway timeout on reports page",
            "504 Gateway Time-out nginx",
            "@report report export times out after 60 seconds",
            "{fqdn} gateway timeout",
            "upstream timed out errors",
            "slow page then 504",
        ),
        bodies=(
            "@report Running the yearly report on {fqdn} always ends with '504 Gateway Time-out nginx' "
            "after exactly "
            "a minute.",
            "error.log: upstream timed out (110: Connection timed out) while reading response header from "
            "upstream",
            "@report big exports fail with 504, small ones work",
            "@db Page loads for ages then 504. Started after the DB migration.",
            "@peak {app} search page gives gateway timeout at peak times",
            "@api 504 on the api from partner integration, they retry and it works sometimes",
        ),
        notes=(
            "@report proxy_read_timeout raised to 300s for /reports/; async export requested from dev.",
            "@db Slow DB query after migration (missing index). DBA added index, no 504s.",
            "@peak Upstream app threads exhausted at peak; scaled out to 4 nodes.",
            "@api timeout increased for /api/export.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="guest-wifi",
        runbook="wifi-8021x-corporate-cannot-join",
        match="partial",
        count=4,
        category="Network",
        cis=("CORP-GUEST", "WLC-01"),
        fills={"room": ("Thames", "Everest", "3.14", "Boardroom", "Orion")},
        titles=(
            "@portal guest wifi login page not loading",
            "@portal visitor can't connect to guest wifi",
            "@room wifi slow in meeting room {room}",
            "@canteen wifi drops in {site} canteen",
            "@voucher guest wifi voucher not working",
            "@signal weak wifi signal at my desk",
        ),
        bodies=(
            "@portal Visitors can connect to CORP-GUEST but the sign-in page never loads.",
            "@room Wi-Fi in meeting room {room} drops every few minutes, Teams calls break.",
            "@voucher Guest voucher code says invalid / expired.",
            "@signal Very weak wifi signal around desk {desk}, one bar.",
            "@canteen canteen wifi unusable at lunch",
            "@portal our contractor's macbook connects to guest but no internet",
        ),
        notes=(
            "@portal Guest portal certificate expired on WLC; renewed.",
            "@room AP in room {room} failed; replaced.",
            "@voucher Voucher expired after 24h; issued new one.",
            "@signal,canteen Survey done; additional AP ordered for area.",
        ),
    ),
    Topic(
        key="sudo",
        runbook="ssh-key-access-linux",
        match="partial",
        count=4,
        category="Security",
        cis=("lnx-app-07", "lnx-build-01", "lnx-web-02"),
        fills={"unit": ("app-orders", "report-worker", "edi-gateway")},
        titles=(
            "@req need sudo on {host}",
            "user is not in the sudoers file",
            "@root root access request for {host}",
            "@lost sudo stopped working",
            "@req can you give me sudo for restarting services",
            "@svc permission denied running systemctl",
        ),
        bodies=(
            "@req {uid} is not in the sudoers file.  This incident will be reported.\n\nneed sudo on {host} "
            "to "
            "restart the app",
            "@req Can I get sudo on {host}? I need to restart our service after deploys.",
            "@lost sudo worked yesterday on {host}, today 'Sorry, user {uid} is not allowed to execute'",
            "@svc Failed to restart {unit}.service: Access denied\nSee system logs and 'systemctl status "
            "{unit}.service' for details.",
            "@root Need root on {host} for installing a package, approved by {mgr}.",
            "@req please add me to the admins group on the linux build servers",
        ),
        notes=(
            "@req,svc Limited sudo rule (systemctl restart {unit}) added via Ansible sudoers role, owner "
            "approved.",
            "@root Full root not approved; package installed by Linux team.",
            "@lost User removed from group by access review; re-added after recertification.",
            "@lost SSSD cache stale after group change; sss_cache -E.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="battery",
        runbook="slow-laptop-performance",
        match="partial",
        count=4,
        category="Hardware",
        cis=("{laptop}",),
        titles=(
            "@drain laptop battery draining fast",
            "@heat laptop overheating",
            "@drain battery only lasts 1 hour",
            "@heat laptop gets very hot and shuts down",
            "@swollen battery swollen?",
            "@charge laptop not charging",
        ),
        bodies=(
            "@drain Battery goes from 100 to 20% in about an hour, laptop is only a year old.",
            "@heat Laptop gets really hot on my lap and the fan is loud all the time.",
            "@heat laptop shut down by itself twice today, was very hot",
            "@swollen Trackpad is bulging a bit and battery drains - is it the battery?",
            "@charge plugged in but says 'plugged in, not charging'",
            "@drain battery report shows design capacity 56Wh, full charge 21Wh",
        ),
        notes=(
            "@drain powercfg /batteryreport shows 38% health; battery replacement ordered under warranty.",
            "@swollen Swollen battery - device removed from service immediately, replacement laptop issued.",
            "@heat Dust in fan; cleaned by hardware team.",
            "@charge Wrong charger (45W); supplied 65W.",
        ),
    ),
    Topic(
        key="online-archive",
        runbook="outlook-cannot-send-mailbox-full",
        match="partial",
        count=3,
        category="Software",
        cis=("Exchange Online", "Microsoft Outlook"),
        titles=(
            "@desk,mac online archive not showing in outlook",
            "@gone where did my old emails go",
            "@gone emails older than 2 years disappeared",
            "@mac In-place archive missing on mac",
            "archive folder empty",
            "@phone need access to my archive on phone",
        ),
        bodies=(
            "@gone All my emails from before 2024 are gone from the inbox!",
            "@desk I have an 'Online Archive' in OWA but not in Outlook desktop.",
            "@mac Archive mailbox not visible in Outlook for Mac.",
            "@ret Retention moved my emails - can we stop this for the {proj} folder?",
            "my archive folder shows nothing",
            "@phone how can I search my archive from the phone?",
        ),
        notes=(
            "@gone,desk,ret Retention policy moved items to online archive as designed; showed archive in "
            "Outlook.",
            "@mac Outlook for Mac version too old to show archive; updated.",
            "@ret Personal tag 'Never move to archive' applied to the folder.",
            "@phone Showed user how to include the archive in Outlook mobile search.",
        ),
    ),
    Topic(
        key="conditional-access",
        runbook="sso-saml-login-failure",
        match="partial",
        count=4,
        category="Security",
        cis=("Entra ID", "Intune"),
        titles=(
            "@53003,travel,ff AADSTS53003 access blocked",
            "@personal you can't get there from here",
            "@personal blocked by conditional access on personal pc",
            "@personal cant access office 365 from home pc",
            "@comp sign in blocked - device not compliant",
            "@comp AADSTS53000 device must be managed",
        ),
        bodies=(
            "@personal Trying to open Outlook web on my home PC: 'You can't get there from here. This "
            "application "
            "contains sensitive information and can only be accessed from devices or client applications "
            "that "
            "meet your organization's management compliance policy.'",
            "@53003 Error AADSTS53003: Access has been blocked by Conditional Access policies.",
            "@comp AADSTS53000: Device is not in required device state: compliant.",
            "@comp My laptop says non compliant and now I can't open SharePoint or Teams.",
            "@travel Travelling to {country} next week, will I be blocked from signing in?",
            "@ff sign in blocked when using Firefox on the company laptop, edge works",
        ),
        notes=(
            "@comp Device non-compliant (missing update); installed, compliance re-evaluated, access "
            "restored.",
            "@personal,53003 Personal device - blocked by design. Advised browser-only OWA access.",
            "@ff Firefox Windows SSO setting enabled via policy; sign-in works.",
            "@travel Travel exception added for named location per policy.",
        ),
    ),
    Topic(
        key="new-starter",
        runbook="m365-license-assignment",
        match="partial",
        count=3,
        category="Inquiry / Help",
        cis=("Active Directory", "Microsoft 365"),
        titles=(
            "new starter setup - {user}",
            "new joiner starting monday needs account",
            "@contractor create accounts for contractor",
            "account + email for new employee",
            "onboarding request for {dept}",
            "new hire access list",
        ),
        bodies=(
            "{user} starts on {day} in {dept}. Needs laptop, email, Teams, access to the {dept} shared "
            "drive.",
            "@contractor We have a contractor starting next week, needs an email address and VPN.",
            "@copy new starter: {user}, job title analyst, manager {mgr}. please set up same as {user2}",
            "Can you create an account and mailbox for our new {dept} assistant?",
            "New employee has laptop but no email yet",
            "onboarding - need accounts ASAP, HR form attached",
        ),
        notes=(
            "Account created via HR feed; licence group added, mailbox provisioned.",
            "@contractor Contractor account created (expiry 3 months), E3 assigned, VPN group added.",
            "@copy Copied group memberships from named user with manager approval.",
        ),
        prio=PRIO_REQUEST,
    ),
]

# ---- Gap clusters: no runbook covers these ---------------------------------------------------

ZOOM_ROOMS = ("ZR-LON-THAMES", "ZR-MAN-PENNINE", "ZR-DUB-LIFFEY", "ZR-LON-BOARDROOM", "ZR-RDG-ORION")

TOPICS += [
    Topic(
        key="zoom-rooms",
        runbook="",
        match="none",
        gap="zoom-rooms",
        count=14,
        category="Hardware",
        cis=ZOOM_ROOMS,
        ci_fills={
            "room": dict(zip(ZOOM_ROOMS, ("Thames", "Pennine", "Liffey", "Boardroom", "Orion"), strict=True)),
            "site": dict(
                zip(
                    ZOOM_ROOMS,
                    ("London HQ", "Manchester office", "Dublin office", "London HQ", "Reading site"),
                    strict=True,
                )
            ),
        },
        alerts=(
            (
                "@off [ALERT] Zoom Room {host} is offline",
                "Zoom Rooms Alert\nRoom: {host}\nLocation: {site}\nAlert: Zoom Room is offline\n"
                "Detected: {evtime}\nThis is an automated notification from Zoom Device Management.",
            ),
            (
                "@cam Zoom Room {host}: Camera disconnected",
                "Zoom Rooms Alert\nRoom: {host}\nAlert: Camera is disconnected\nDetected: {evtime}",
            ),
        ),
        alert_share=0.25,
        titles=(
            "@off zoom room offline in {room}",
            "@off meeting room screen says zoom room offline",
            "@ctrl zoom rooms controller not pairing",
            "@cam Zoom Room camera not working in {room}",
            "@ctrl can't start meeting from room controller",
            "@upd zoom room stuck on 'updating'",
            "@audio {room} zoom room no audio",
            "@cal room booking panel outside {room} wrong",
        ),
        bodies=(
            "@off The TV in {room} shows 'This Zoom Room is offline'. Meeting with a customer in 20 min!!",
            "@ctrl Zoom Rooms controller (the iPad on the table) says 'Cannot connect to Zoom Room' in "
            "{room}.",
            "@upd Zoom Room in {room} keeps rebooting and is stuck on the update screen.",
            "@cam In {room} the Zoom Room camera shows a black image to remote participants.",
            "@audio Zoom Room {host}: no audio from the ceiling speakers, remote side can hear us.",
            "@cal Scheduling display outside {room} shows wrong bookings / not syncing with calendar.",
            "@off TV in {room} just shows 'No signal' and the zoom pc under the table has a blue light "
            "flashing.",
            "@off Zoom dashboard shows {host} offline since {time}. Device: Poly Studio X50.",
        ),
        notes=(
            "@off Room PC lost network after switch port move; patched port, Zoom Room back online.",
            "@ctrl Controller re-paired using activation code from Zoom admin portal.",
            "@upd Update stuck; reinstalled Zoom Rooms app on room PC.",
            "@cam Camera USB cable loose behind TV, reseated.",
            "@audio AV vendor engineer replaced the DSP amp, audio working.",
            "@cal Calendar integration token expired in Zoom admin; re-authorised.",
        ),
    ),
    Topic(
        key="salesforce",
        runbook="",
        match="none",
        gap="salesforce",
        count=16,
        category="Software",
        cis=("Salesforce", "Salesforce Sales Cloud"),
        fills={
            "sfreport": (
                "Pipeline by Region",
                "Q3 Bookings",
                "Open Cases by Owner",
                "EMEA Forecast",
                "Renewals 2026",
            ),
        },
        titles=(
            "@sess salesforce keeps logging me out",
            "@sess Salesforce session expired every 15 min",
            "@exp cant export report from salesforce",
            "@exp salesforce report export failing",
            "@sess Salesforce - 'your session has expired'",
            "@exp export to excel greyed out in salesforce",
            "@dash salesforce dashboard not refreshing",
            "@olk Salesforce for Outlook add-in not loading",
        ),
        bodies=(
            "@sess Salesforce kicks me out every 15 minutes with 'Your session has expired. Please log in "
            "again.' "
            "Losing my work on opportunities.",
            "@exp When I export the {sfreport} report to Excel it spins then 'An internal server error has "
            "occurred. Error ID: {sfid}'",
            "@exp Export button missing/greyed out on the {sfreport} report, my colleague has it.",
            "@exp Report export gives me only 2000 rows, I need all {n}0000 records.",
            "@sess Session timed out in Salesforce while I was typing a long case note, lost all of it. "
            "3rd time this week.",
            "@dash Salesforce dashboard '{sfreport}' hasn't refreshed since {day}, says 'Dashboard refresh "
            "failed'.",
            "@olk The Salesforce side panel in Outlook says 'We can't load the Outlook integration'.",
            "@sess salesforce: 'Your session has ended. Log in again.' a few minutes after every sign in",
        ),
        notes=(
            "@sess Session timeout on SF profile set to 15 min by an SF admin change; CRM team reverted to 2 "
            "hours.",
            "@exp User lacked 'Export Reports' permission; CRM team added permission set.",
            "@exp Large export - used Data Loader / report subscription instead.",
            "Passed to CRM support team (Salesforce admins) - {ref}.",
            "@dash Dashboard running user deactivated; CRM admin changed running user.",
            "@olk Outlook integration not enabled for user in SF setup; enabled.",
        ),
    ),
    Topic(
        key="badge-access",
        runbook="",
        match="none",
        gap="badge-access",
        count=13,
        category="Security",
        cis=("ACS-LENEL-01", "Door Controller 3F", "Reception turnstiles"),
        fills={
            "door": (
                "main entrance",
                "server room",
                "3rd floor east",
                "car park gate",
                "loading bay",
                "Lab 2",
            )
        },
        titles=(
            "badge not working",
            "@door door access card not opening {door} door",
            "can't get into the building with my pass",
            "@reader badge reader at {door} broken",
            "@new new starter needs building access card",
            "@door,turn access card stopped working after weekend",
            "@turn turnstile rejecting my badge",
            "@req need access to server room door",
        ),
        bodies=(
            "@door My badge doesn't open the {door} door anymore, reader flashes red and beeps twice.",
            "Locked out of {site} - my pass stopped working this morning. Security let me in.",
            "@reader The card reader at {door} is dead, no lights. People are propping the door open.",
            "@req Please give {user} access to the {door} (approved by {mgr}).",
            "@new New starter {user} starts {day}, needs a photo ID badge for {site}.",
            "@turn Turnstile at reception rejects my badge but the side door works??",
            "@lost lost my badge, need it disabled and a new one",
            "@door my access card works on the ground floor but not {floor} since I changed teams",
        ),
        notes=(
            "@door,turn Badge access level expired (contract end date not updated); Facilities updated in "
            "Lenel.",
            "@reader,turn Reader fault - Facilities called security vendor, reader replaced.",
            "Not IT - reassigned to Facilities/Security desk.",
            "@lost,new Lost badge disabled, replacement printed at reception.",
            "@req,door Access level for {door} added after approval by area owner.",
        ),
        prio=PRIO_REQUEST,
    ),
    Topic(
        key="sap",
        runbook="",
        match="none",
        gap="sap-gui",
        count=15,
        category="Software",
        cis=("SAP ECC PRD", "SAP S/4HANA", "sapprd01"),
        fills={"tcode": ("ME21N", "FB60", "VA01", "MIGO", "F-53", "ZFI_REPORT", "ME23N")},
        titles=(
            "@lock,net SAP login not working",
            "@dump,auth SAP GUI error when running {tcode}",
            "@lock sap password locked",
            "@lock can't log on to SAP - user locked",
            "@crash SAP GUI crashes on startup",
            "@auth No authorization for transaction {tcode}",
            "@land sap logon pad empty",
            "@land,net SAP system PRD not in list",
        ),
        bodies=(
            "@lock SAP says 'User is locked. Please notify the person responsible' when I log on to PRD "
            "client "
            "100.",
            "@auth Running {tcode} gives:\nYou are not authorized to use transaction {tcode}\nI need it for "
            "month-end "
            "postings.",
            "@crash SAP GUI 7.70 crashes as soon as I open it, after the laptop update.",
            "@land SAP Logon pad is empty, no systems listed. New laptop.",
            "@dump Short dump TIME_OUT when running report in {tcode}. Happens every time for company code "
            "1000.",
            "@lock Password logon no longer possible - too many failed attempts. Please reset SAP password.",
            "@net Getting 'Partner not reached (host sapprd01, service sapdp00)' in SAP Logon.",
            "@auth My SAP role doesn't allow {tcode} since the role redesign, approved by {mgr}.",
        ),
        notes=(
            "@lock SAP user unlocked and initial password set in SU01 by SAP basis.",
            "@land SAPUILandscape.xml not deployed to new laptop; policy fixed. Systems listed.",
            "@auth Role change requested via GRC; approved and assigned by SAP security team.",
            "@crash SAP GUI reinstalled (7.70 PL 8) via Software Center.",
            "@net Passed to SAP basis team ({ref}); network route to sapprd01 restored.",
            "@dump ST22 dump TIME_OUT - report now run in background per SAP team.",
        ),
    ),
    Topic(
        key="jenkins",
        runbook="",
        match="none",
        gap="jenkins-agents",
        count=12,
        category="Software",
        cis=("jenkins.corp.example.com", "jenkins-agent-03", "jenkins-agent-07"),
        fills={
            "agent": ("jenkins-agent-03", "jenkins-agent-07", "win-build-02", "jenkins-agent-11"),
            "jreason": (
                "Disconnected by system (JNLP agent connection refused)",
                "Connection was broken: java.nio.channels.ClosedChannelException",
                "Agent is offline: Java version mismatch (agent JDK 11, controller requires 17)",
                "Launch failed - cleaning up connection",
            ),
        },
        alerts=(
            (
                "@off [ALERT] Jenkins agent {agent} offline",
                "Jenkins monitoring\nNode: {agent}\nStatus: offline\nReason: {jreason}\nSince: {evtime}\n"
                "Queued builds waiting: {n}",
            ),
        ),
        alert_share=0.3,
        titles=(
            "jenkins builds stuck in queue",
            "@off build agents offline",
            "Jenkins: waiting for next available executor",
            "@off {agent} disconnected",
            "@off jenkins pipeline failing - agent offline",
            "@off all linux build agents down",
            "jenkins slow / queue of {n}0 builds",
        ),
        bodies=(
            "All our builds are 'Waiting for next available executor on linux-docker'. Nothing has run since "
            "{time}.",
            "@off Node {agent} shows offline: {jreason}",
            "@chan Builds fail with 'hudson.remoting.ChannelClosedException: Channel "
            '"hudson.remoting.Channel@'
            '{hexid}:{agent}": Remote call on {agent} failed. The channel is closing down or has closed '
            "down'",
            "@off,patch Jenkins agents {agent} and one other disconnected after the patching weekend. "
            "Release is "
            "tomorrow!",
            "@label Pipelines stuck at 'Still waiting to schedule task - There are no nodes with the label "
            "windows-msbuild'.",
            "@k8s The Jenkins queue has ~{n}0 jobs, Kubernetes agents never come up (pod template error).",
            "@off,night agent {agent} keeps going offline every night at 2am",
        ),
        notes=(
            "@off,chan Agent JDK upgraded to 17 to match controller after Jenkins update; agents "
            "reconnected.",
            "@patch,off Agent service not started after patching; restarted jenkins-agent services.",
            "@k8s Kubernetes pod template referenced a removed image; DevOps fixed cloud config.",
            "Handed to DevOps platform team ({ref}).",
            "@night Nightly agent reboot task misconfigured; removed, agent stable.",
        ),
        prio=PRIO_SERVER,
    ),
    Topic(
        key="citrix",
        runbook="",
        match="none",
        gap="citrix-workspace",
        count=15,
        category="Software",
        cis=("Citrix Workspace", "CTX-SF-01", "Citrix Virtual Apps"),
        fills={
            "ctxapp": ("Finance Desktop", "SAP (Citrix)", "Legacy CRM", "Win11 VDI", "Bloomberg Terminal"),
        },
        titles=(
            "@black citrix black screen",
            "@black Citrix desktop opens as black screen",
            "@launch cant launch citrix apps",
            "@launch Citrix Workspace: cannot start app",
            "@freeze citrix session freezes",
            "@ws citrix workspace app asking to update",
            "@ica ICA file downloads instead of opening",
            "@slow citrix very slow from home",
        ),
        bodies=(
            "@black When I launch the {ctxapp} in Citrix I just get a black screen, have to close it from "
            "the "
            "taskbar.",
            "@launch Citrix Workspace says 'Cannot start app. Contact your help desk with the following "
            "information: "
            "Cannot connect to the server. SSL Error 61: You have not chosen to trust the issuer of the "
            "server's security certificate.'",
            "@ica Launching {ctxapp} from the Citrix portal downloads a launch.ica file and nothing happens.",
            "@freeze Citrix desktop freezes every 10 min, need to reconnect.",
            "@black black screen in citrix after login, mouse cursor only.",
            '@launch Workspace app says \'The connection to "{ctxapp}" failed with status '
            "(Unknown client error 1110)'.",
            "@ws Since the laptop update, Citrix keeps asking to install Citrix Workspace even though it's "
            "installed.",
            "@slow Citrix sessions very laggy from home, typing delay of seconds in {ctxapp}.",
        ),
        notes=(
            "@black,freeze Black screen - logged off stuck session via Citrix Director, relaunch OK.",
            "@ws,launch Workspace app upgraded to current LTSR via Software Center; launches fine.",
            "@ica Browser set to always open .ica files with Citrix Workspace.",
            "@launch,ws Reset Citrix Workspace (Advanced Preferences > Reset).",
            "@freeze,black,slow VDA on CTX-VDA-07 unregistered; Citrix team put it in maintenance and "
            "rebooted.",
            "Passed to EUC/Citrix team ({ref}).",
        ),
    ),
]

# --------------------------------------------------------------------------------------------
# Generation
# --------------------------------------------------------------------------------------------

GENERIC_NOTES = (
    "Resolved - user confirmed.",
    "fixed",
    "Working now per user.",
    "User confirmed issue resolved, closing.",
    "No response from user after 3 attempts, closing. Reopen if still an issue.",
    "Issue no longer occurring.",
)
NOTE_SUFFIXES = (" User confirmed.", " Closing.", " Confirmed with user by phone.", " KB updated.", "")

FWD_REMARKS = (
    "Forwarding on behalf of {user} - can someone pick this up please?",
    "See below, this is blocking the team.",
    "FYI - raised by {first} in our team, can you help?",
    "Please see below. Thanks",
)
REPLY_REMARKS = (
    "Still not fixed, see my original message below.",
    "this is happening again.",
    "Any update on this? Still broken.",
    "Hi, following up on the below.",
)
TRAILERS = (
    "Asset tag: {laptop}",
    "Location: {site}, {floor}",
    "Best contact: ext. {ext}",
    "Contact: {user} ({uid}) - mobile preferred",
    "Contact: ext. {ext} or Teams",
    "Location: {site}, desk {desk}",
)
SIGN_OFFS = ("Thanks", "Many thanks", "Cheers", "Kind regards", "Thanks in advance", "Regards")


def ascii_fold(text: str) -> str:
    """Strip accents so names can be used in user ids and e-mail addresses."""
    norm = unicodedata.normalize("NFKD", text)
    return "".join(c for c in norm if c.isascii() and c.isalpha()).lower()


def random_between(rng: random.Random, lo: datetime, hi: datetime, business_hours: bool) -> datetime:
    """A random second in [lo, hi]; user tickets mostly land on weekdays in office hours."""
    span = max(0, int((hi - lo).total_seconds()))
    pick = lo
    for _ in range(25):
        pick = lo + timedelta(seconds=rng.randint(0, span))
        if not business_hours or (pick.weekday() < 5 and 7 <= pick.hour < 19):
            return pick
    return pick


def pick_dates(rng: random.Random, state: str, business_hours: bool) -> tuple[datetime, datetime]:
    """Created/updated timestamps consistent with the ticket state (updated >= created, within range)."""
    windows = {
        "New": (END - timedelta(days=9), END),
        "In Progress": (END - timedelta(days=40), END),
        "On Hold": (END - timedelta(days=75), END),
        "Resolved": (END - timedelta(days=14), END),
        "Closed": (START, END - timedelta(days=8)),
    }
    lo, hi = windows[state]
    created = random_between(rng, lo, hi, business_hours)
    if state == "New":
        updated = created if rng.random() < 0.5 else created + timedelta(minutes=rng.randint(1, 40))
    elif state == "In Progress":
        updated = created + timedelta(minutes=rng.randint(10, 6 * 24 * 60))
    elif state == "On Hold":
        updated = created + timedelta(minutes=rng.randint(60, 20 * 24 * 60))
    else:
        minutes = 10 + int(min(rng.expovariate(1 / 600), 7 * 24 * 60))
        updated = created + timedelta(minutes=minutes)
        if state == "Closed":
            updated += timedelta(days=7, minutes=rng.randint(0, 90))
    if updated > END:
        # Still open at export time or closed just before it: land somewhere before the cut-off.
        updated = created + (END - created) * rng.random()
        updated = updated.replace(microsecond=0)
    return created, max(updated, created)


def make_values(rng: random.Random, topic: Topic, created: datetime, tags: frozenset[str]) -> dict[str, str]:
    """Fill values for one ticket: caller, hosts, codes, dates, plus the topic's own fills.

    cmdb_ci candidates and fill options may carry scenario tags too (e.g. '@lnx lnx-app-03'),
    so a pasted `top` output lands on a Linux host and a w32tm one on a Windows host.
    """
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    uid = (ascii_fold(first)[:1] + ascii_fold(last))[:12]
    evtime = created - timedelta(minutes=rng.randint(1, 9))
    days = rng.randint(5, 30)
    notafter = created + timedelta(days=days)
    mgr = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
    dept = rng.choice(DEPTS)
    values: dict[str, str] = {
        "first": first,
        "last": last,
        "user": f"{first} {last}",
        "user2": f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}",
        "uid": uid,
        "email": f"{ascii_fold(first)}.{ascii_fold(last)}@corp.example.com",
        "mgr": mgr,
        "dept": dept,
        "dept2": rng.choice([d for d in DEPTS if d != dept]),
        "laptop": f"LT-{rng.randint(10000, 99999)}",
        "desktop": f"PC-{rng.randint(10000, 99999)}",
        "server": rng.choice(SERVERS),
        "site": rng.choice(SITES),
        "floor": rng.choice(FLOORS),
        "desk": f"{rng.choice('ABCDEF')}{rng.randint(1, 60):02d}",
        "app": rng.choice(APPS),
        "phone": rng.choice(PHONES),
        "city": rng.choice(CITIES),
        "country": rng.choice(COUNTRIES),
        "fqdn": rng.choice(FQDNS),
        "proj": rng.choice(PROJECTS),
        "when": rng.choice(WHEN),
        "when_short": rng.choice(WHEN_SHORT),
        "day": rng.choice(WEEKDAYS),
        "time": f"{rng.randint(7, 18):02d}:{rng.choice((0, 15, 30, 45)):02d}",
        "ip": f"10.{rng.choice((20, 30, 40))}.{rng.randint(1, 30)}.{rng.randint(2, 250)}",
        "apipa": f"169.254.{rng.randint(1, 254)}.{rng.randint(1, 254)}",
        "pct": str(rng.randint(91, 99)),
        "free": str(rng.randint(1, 4)),
        "n": str(rng.randint(2, 9)),
        "mins": str(rng.choice((5, 10, 15, 20, 30, 45))),
        "ext": str(rng.randint(2000, 7999)),
        "ref": f"INC000{rng.randint(8000, 9999)}",
        "chg": f"CHG00{rng.randint(30000, 49999)}",
        "prb": f"PRB000{rng.randint(4000, 4999)}",
        "ritm": f"RITM00{rng.randint(40000, 59999)}",
        "vcase": f"{rng.randint(4000000, 4999999)}",
        "kb": f"KB50{rng.randint(30000, 49999)}",
        "evtime": evtime.strftime(TS_FMT),
        "evid": str(rng.randint(10_000_000, 99_999_999)),
        "nginxts": evtime.strftime("%Y/%m/%d %H:%M:%S"),
        "kt": f"{rng.randint(100000, 9999999)}.{rng.randint(100000, 999999)}",
        "pid": str(rng.randint(1200, 65000)),
        "days": str(days),
        "notafter": notafter.strftime("%Y-%m-%d"),
        "notafter_ossl": notafter.strftime("%b %d 23:59:59 %Y GMT"),
        "serial": "".join(rng.choice("0123456789ABCDEF") for _ in range(16)),
        "keyid": "".join(rng.choice("0123456789ABCDEF") for _ in range(8)),
        "guid": "-".join("".join(rng.choice("0123456789abcdef") for _ in range(k)) for k in (8, 4, 4, 4, 12)),
        "hexid": "".join(rng.choice("0123456789abcdef") for _ in range(8)),
        "keyfrag": "".join(
            rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789") for _ in range(32)
        ),
        "sfid": f"{rng.randint(10**8, 10**9 - 1)}-{rng.randint(10000, 99999)} ({rng.randint(-999999, -1)})",
    }
    for name, options in topic.fills.items():
        values[name] = pick_fitting(rng, options, tags, vague_fits_all=True)
    ci = pick_fitting(rng, topic.cis, tags, vague_fits_all=True).format_map(values)
    values["ci"] = ci
    for name, table in topic.ci_fills.items():
        values[name] = table[ci]
    values.setdefault("host", ci)
    pod_suffix = "".join(rng.choice("bcdfghjklmnpqrstvwxz2456789") for _ in range(5))
    values["pod"] = f"{values.get('deploy', 'app')}-{rng.randint(5, 9)}{values['hexid'][:8]}-{pod_suffix}"
    return values


def typo(rng: random.Random, text: str) -> str:
    """Introduce one realistic typo (swap, drop or double a letter) in a longer word."""
    words = text.split(" ")
    candidates = [i for i, w in enumerate(words) if w.isalpha() and len(w) > 4]
    if not candidates:
        return text
    i = rng.choice(candidates)
    w = words[i]
    j = rng.randrange(1, len(w) - 2)
    roll = rng.random()
    if roll < 0.5:
        w = w[:j] + w[j + 1] + w[j] + w[j + 2 :]
    elif roll < 0.8:
        w = w[:j] + w[j + 1 :]
    else:
        w = w[: j + 1] + w[j:]
    words[i] = w
    return " ".join(words)


def roughen_title(rng: random.Random, title: str) -> str:
    """Make a human-written title look like real queue data: case, urgency, typos."""
    if rng.random() < 0.12:
        title = typo(rng, title)
    roll = rng.random()
    if roll < 0.22:
        title = title.lower()
    elif roll < 0.25:
        title = title.upper()
    elif roll < 0.45:
        title = title[:1].upper() + title[1:]
    if rng.random() < 0.07:
        title = rng.choice(("URGENT - ", "urgent: ", "HELP - ", "P1?? ")) + title
    if rng.random() < 0.06:
        title += rng.choice(("!!", "!!!", " ??", " - please help"))
    return title


def email_wrap(rng: random.Random, body: str, title: str, v: Mapping[str, str], created: datetime) -> str:
    """Wrap a body the way tickets created from the service desk mailbox look."""
    sent_at = created - timedelta(minutes=rng.randint(2, 50))
    sent = f"{sent_at:%A}, {sent_at.day} {sent_at:%B %Y} {sent_at:%H:%M}"
    roll = rng.random()
    if roll < 0.4:
        return f"Hi team,\n\n{body}\n\n{rng.choice(SIGN_OFFS)},\n{v['first']}"
    if roll < 0.6:
        return f"Hello IT,\n\n{body}\n\n{rng.choice(SIGN_OFFS)}\n{v['user']}\n{v['dept']} | Ext. {v['ext']}"
    if roll < 0.8:
        fwd_by = v["mgr"].split(" ")[0]
        remark = rng.choice(FWD_REMARKS).format_map(v)
        return (
            f"{remark}\n\n{fwd_by}\n\n-----Original Message-----\nFrom: {v['user']} <{v['email']}>\n"
            f"Sent: {sent}\nTo: IT Service Desk <servicedesk@corp.example.com>\nSubject: {title}\n\n{body}"
        )
    if roll < 0.93:
        quoted = "\n".join(f"> {line}" if line else ">" for line in body.splitlines())
        return (
            f"{rng.choice(REPLY_REMARKS)}\n\n{v['first']}\n\nOn {sent}, {v['user']} <{v['email']}> wrote:\n"
            f"{quoted}"
        )
    return f"{body}\n\nSent from my iPhone"


def add_trailer(rng: random.Random, body: str, v: Mapping[str, str]) -> str:
    """Extra lines the portal form or the caller often adds under the text."""
    if rng.random() >= 0.2:
        return body
    trailer = rng.choice(TRAILERS).format_map(v)
    return f"{body}\n\n{trailer}"


def roughen_body(rng: random.Random, body: str) -> str:
    if rng.random() < 0.12:
        body = typo(rng, body)
    if rng.random() < 0.07:
        body = body.lower()
    return body


def split_tags(text: str) -> tuple[frozenset[str], str]:
    """Split the optional scenario tag prefix: '@a,b text' -> ({'a', 'b'}, 'text')."""
    if not text.startswith("@"):
        return frozenset(), text
    head, _, rest = text.partition(" ")
    return frozenset(head[1:].split(",")), rest


def fitting(options: tuple[str, ...], tags: frozenset[str]) -> list[str]:
    """Options that fit a scenario: untagged (generic) ones plus those sharing a tag with it."""
    parsed = [split_tags(o) for o in options]
    return [text for t, text in parsed if not t or t & tags]


def pick_fitting(
    rng: random.Random, options: tuple[str, ...], tags: frozenset[str], vague_fits_all: bool = False
) -> str:
    """Keep title, body and close note about the same scenario (e.g. 'locked SAP user').

    A vague, untagged body only gets generic titles, but any close note: the cause of
    "outlook broken again" can be anything.
    """
    everything = [split_tags(o)[1] for o in options]
    if not tags and vague_fits_all:
        return rng.choice(everything)
    return rng.choice(fitting(options, tags) or everything)


def close_note(rng: random.Random, topic: Topic, tags: frozenset[str], v: Mapping[str, str]) -> str:
    if rng.random() < 0.1:
        return rng.choice(GENERIC_NOTES)
    note = pick_fitting(rng, topic.notes, tags, vague_fits_all=True).format_map(v)
    roll = rng.random()
    if roll < 0.15:
        note += rng.choice(NOTE_SUFFIXES)
    elif roll < 0.22:
        note = "Resolution: " + note
    elif roll < 0.3:
        note = note.lower()
    return note


@dataclass
class Ticket:
    created: datetime
    updated: datetime
    row: dict[str, str]
    label: dict[str, str]
    order: int


def generate(rng: random.Random) -> list[Ticket]:
    tickets: list[Ticket] = []
    seen: set[str] = set()
    for topic in TOPICS:
        for _ in range(topic.count):
            is_alert = bool(topic.alerts) and rng.random() < topic.alert_share
            state = rng.choices(STATES, weights=STATE_WEIGHTS)[0]
            created, updated = pick_dates(rng, state, business_hours=not is_alert)
            for _attempt in range(60):
                if is_alert:
                    title_t, body_t = rng.choice(topic.alerts)
                    tags, title_t = split_tags(title_t)
                    v = make_values(rng, topic, created, tags)
                    title = title_t.format_map(v)
                    body = body_t.format_map(v)
                else:
                    tags, body_t = split_tags(rng.choice(topic.bodies))
                    v = make_values(rng, topic, created, tags)
                    raw_title = pick_fitting(rng, topic.titles, tags).format_map(v)
                    body = roughen_body(rng, body_t.format_map(v))
                    body = add_trailer(rng, body, v)
                    title = roughen_title(rng, raw_title)
                    if rng.random() < 0.24 and not body.lower().startswith(("hi", "hello")):
                        body = email_wrap(rng, body, raw_title, v, created)
                        if "-----Original Message-----" in body and rng.random() < 0.6:
                            title = "FW: " + title
                        elif "wrote:\n>" in body and rng.random() < 0.6:
                            title = "RE: " + title
                if body not in seen:
                    break
            else:
                raise SystemExit(f"could not generate a unique ticket for topic {topic.key}")
            seen.add(body)

            ci = v["ci"] if is_alert or rng.random() > 0.07 else ""
            category = topic.category
            if not is_alert and rng.random() < 0.04:
                category = "Inquiry / Help"
            priority = rng.choices(PRIORITIES, weights=topic.prio)[0]
            assigned = "" if state == "New" else rng.choice(ENGINEERS)
            note = close_note(rng, topic, tags, v) if state in ("Resolved", "Closed") else ""
            row = {
                "short_description": title,
                "description": body,
                "priority": priority,
                "state": state,
                "assigned_to": assigned,
                "sys_created_on": created.strftime(TS_FMT),
                "sys_updated_on": updated.strftime(TS_FMT),
                "close_notes": note,
                "category": category,
                "cmdb_ci": ci,
            }
            label = {"runbook": topic.runbook, "match": topic.match, "gap": topic.gap}
            tickets.append(Ticket(created, updated, row, label, len(tickets)))
    tickets.sort(key=lambda t: (t.created, t.order))
    for i, t in enumerate(tickets):
        number = f"INC{FIRST_NUMBER + i:07d}"
        t.row["number"] = number
        t.label["number"] = number
    return tickets


def runbook_statuses() -> dict[str, str]:
    """slug -> status from each runbook's front matter."""
    statuses: dict[str, str] = {}
    for path in sorted(RUNBOOK_DIR.glob("*.md")):
        status = ""
        lines = path.read_text(encoding="utf-8").splitlines()
        for line in lines[1 : lines.index("---", 1)]:
            if line.startswith("status:"):
                status = line.split(":", 1)[1].strip()
        statuses[path.stem] = status
    return statuses


def check_topics(statuses: Mapping[str, str]) -> None:
    keys = Counter(t.key for t in TOPICS)
    problems = [f"duplicate topic key {k}" for k, c in keys.items() if c > 1]
    for t in TOPICS:
        if len(t.titles) < 6 or len(t.bodies) < 6:
            problems.append(f"{t.key}: needs >= 6 title and body variants")
        scenario_tags = [split_tags(b)[0] for b in t.bodies] + [split_tags(a[0])[0] for a in t.alerts]
        known = frozenset().union(*scenario_tags)
        has_vague = not all(scenario_tags)
        for text in (*t.titles, *t.notes):
            tags = split_tags(text)[0]
            reachable = not tags or tags & known or (has_vague and text in t.notes)
            if not reachable:
                problems.append(f"{t.key}: {text!r} never fits a body or alert (check its tags)")
        for tags in scenario_tags:
            if tags and not fitting(t.notes, tags):
                problems.append(f"{t.key}: no close note fits scenario {sorted(tags)}")
        for body in t.bodies:
            tags = split_tags(body)[0]
            if not fitting(t.titles, tags):
                problems.append(f"{t.key}: no title fits body {body!r}")
        if t.match == "none":
            if t.runbook or not t.gap:
                problems.append(f"{t.key}: gap topics need a gap id and no runbook")
        elif t.runbook not in statuses:
            problems.append(f"{t.key}: runbook {t.runbook!r} has no file in {RUNBOOK_DIR}")
        elif statuses[t.runbook] == "retired":
            problems.append(f"{t.key}: targets retired runbook {t.runbook}")
    if problems:
        raise SystemExit("\n".join(problems))


def write_csv(path: Path, header: tuple[str, ...], rows: list[dict[str, str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=header, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


def main() -> int:
    statuses = runbook_statuses()
    check_topics(statuses)
    tickets = generate(random.Random(SEED))
    write_csv(TICKETS_CSV, TICKET_HEADER, [t.row for t in tickets])
    write_csv(LABELS_CSV, LABEL_HEADER, [t.label for t in tickets])

    matches = Counter(t.label["match"] for t in tickets)
    gaps = Counter(t.label["gap"] for t in tickets if t.label["gap"])
    targets = Counter(t.label["runbook"] for t in tickets if t.label["runbook"])
    print(f"wrote {len(tickets)} tickets to {TICKETS_CSV.relative_to(ROOT)}")
    print(f"wrote labels to {LABELS_CSV.relative_to(ROOT)}")
    print("match: " + ", ".join(f"{k}={matches[k]}" for k in ("full", "partial", "none")))
    print("gaps: " + ", ".join(f"{k}={c}" for k, c in sorted(gaps.items())))
    thin = sorted(s for s, st in statuses.items() if st == "approved" and targets[s] < 3)
    if thin:
        print("approved runbooks with fewer than 3 target tickets: " + ", ".join(thin))
    return 0


if __name__ == "__main__":
    sys.exit(main())
