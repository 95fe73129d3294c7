//! Every sentence the web pages show, in one place (English). A page asks
//! for its language's [`Strings`] with [`for_language`]; a translation is
//! one more `static` of the same type.
//!
//! Texts are trusted HTML fragments written for chatrelay; `{{name}}`
//! marks a live value that the page fills in, always HTML-escaped
//! (`html::fill`). A marker left unfilled is a bug the page tests catch.

pub struct Strings {
    pub lang: &'static str,
    // --- shared
    pub nav_home: &'static str,
    pub nav_info: &'static str,
    pub nav_privacy: &'static str,
    pub footer: &'static str,
    pub unset: &'static str,
    pub days: &'static str,
    // --- index page
    pub index_title: &'static str,
    pub index_intro: &'static str,
    pub index_open: &'static str,
    pub index_link: &'static str,
    pub index_invite_only: &'static str,
    pub index_closed: &'static str,
    pub index_retention: &'static str,
    pub index_more: &'static str,
    // --- privacy page
    pub privacy_title: &'static str,
    pub privacy_intro: &'static str,
    pub privacy_unlike_head: &'static str,
    pub privacy_unlike: [&'static str; 5],
    pub privacy_who_head: &'static str,
    pub privacy_who_intro: &'static str,
    pub privacy_postal: &'static str,
    pub privacy_mail: &'static str,
    pub privacy_pdo: &'static str,
    pub privacy_supervisor: &'static str,
    pub privacy_missing: &'static str,
    pub privacy_data_head: &'static str,
    pub privacy_data_intro: &'static str,
    pub privacy_data: [&'static str; 6],
    pub privacy_realtime_head: &'static str,
    pub privacy_realtime_promise: &'static str,
    pub privacy_realtime_iroh: &'static str,
    pub privacy_realtime_turn: &'static str,
    pub privacy_realtime_none: &'static str,
    pub privacy_accounts_head: &'static str,
    pub privacy_accounts_open: &'static str,
    pub privacy_accounts_invite: &'static str,
    pub privacy_accounts_closed: &'static str,
    pub privacy_accounts_basis: &'static str,
    pub privacy_ops_head: &'static str,
    pub privacy_ops_intro: &'static str,
    pub privacy_logs_ram: &'static str,
    pub privacy_logs_host: &'static str,
    pub privacy_limits_intro: &'static str,
    pub privacy_limits: [&'static str; 5],
    pub privacy_ops_basis: &'static str,
    pub privacy_web_head: &'static str,
    pub privacy_web: &'static str,
    pub privacy_share_head: &'static str,
    pub privacy_share_intro: &'static str,
    pub privacy_share: [&'static str; 5],
    pub privacy_rights_head: &'static str,
    pub privacy_rights: &'static str,
    pub privacy_contact: &'static str,
    pub privacy_complain: &'static str,
    pub privacy_version: &'static str,
    // --- info page
    pub info_title: &'static str,
    pub info_join_head: &'static str,
    pub info_join_open: &'static str,
    pub info_join_invite: &'static str,
    pub info_join_closed: &'static str,
    pub info_apps_head: &'static str,
    pub info_apps: &'static str,
    pub info_limits_head: &'static str,
    pub info_limits: [&'static str; 6],
    pub info_fed_head: &'static str,
    pub info_fed_domain: &'static str,
    pub info_fed_ip: &'static str,
    pub info_dns_head: &'static str,
    pub info_dns_domain: &'static str,
    pub info_dns_ip: &'static str,
    // --- status page (LAN only)
    pub status_title: &'static str,
    pub status_lan_only: &'static str,
    pub status_address: &'static str,
    pub status_registration: &'static str,
    pub status_reg_open: &'static str,
    pub status_reg_invite: &'static str,
    pub status_reg_closed: &'static str,
    pub status_invite_head: &'static str,
    pub status_first_invite: &'static str,
    pub status_new_invite_button: &'static str,
    pub status_new_invite_done: &'static str,
    pub status_no_invite: &'static str,
    pub status_storage: &'static str,
    pub status_storage_line: &'static str,
    pub status_accounts: &'static str,
    pub status_certificate: &'static str,
    pub status_cert_self_signed: &'static str,
    pub status_cert_external: &'static str,
    pub status_cert_acme: &'static str,
    pub status_privacy_warning: &'static str,
    pub status_privacy_ok: &'static str,
    pub status_checks_head: &'static str,
    pub status_checks_none: &'static str,
    pub status_forbidden: &'static str,
    pub status_cert_served: &'static str,
    pub status_cert_names: &'static str,
    pub status_cert_issuer: &'static str,
    pub status_cert_self_issued: &'static str,
    pub status_cert_valid_until: &'static str,
    pub status_cert_days_left: &'static str,
    pub status_cert_expired: &'static str,
    pub status_checks_first: &'static str,
    pub status_checks_on_demand: &'static str,
    pub status_checks_age: &'static str,
    pub status_checks_running_now: &'static str,
    pub status_checks_ok_all: &'static str,
    pub status_checks_problems: &'static str,
    pub status_checks_todo: &'static str,
    pub status_checks_button: &'static str,
    pub status_checks_started: &'static str,
    pub status_checks_busy: &'static str,
    pub status_checks_too_soon: &'static str,
    /// (check id, what it is about), in `doctor::run`'s order.
    pub check_labels: [(&'static str, &'static str); 13],
}

pub static EN: Strings = Strings {
    lang: "en",
    nav_home: "Home",
    nav_info: "How it works",
    nav_privacy: "Privacy",
    footer: "{{domain}} runs chatrelay {{version}}, a chatmail relay for Delta Chat.",
    unset: "not set",
    days: "days",

    index_title: "{{domain}} — a chatmail relay",
    index_intro: "This server carries end-to-end encrypted chat messages between Delta Chat apps. \
        It asks for no phone number and no name, accepts only encrypted messages, and talks to \
        every other chatmail relay and ordinary e-mail server.",
    index_open: "Scan this code with Delta Chat (“Add Profile” → “Scan QR code”) to get a chat \
        profile on {{domain}}, or tap the link on the phone where Delta Chat is installed.",
    index_link: "Get a profile on {{domain}}",
    index_invite_only: "New profiles on {{domain}} need an invitation. Ask the person who runs \
        this relay for an invite code.",
    index_closed: "{{domain}} does not take new profiles at the moment.",
    index_retention: "Messages are removed from the server {{mail_days}} days after they arrive; \
        a profile nobody has used for {{inactive_days}} days is removed with everything in it.",
    index_more: "How this relay works, its limits and its privacy policy:",

    privacy_title: "Privacy policy of {{domain}}",
    privacy_intro: "{{domain}} is a chatmail relay: it stores end-to-end encrypted messages only \
        for as long as it takes to hand them to the devices of their recipients, who use the \
        Delta Chat app. It does not ask you for personal details — no phone number, no name, no \
        other e-mail address — and keeps as little as the service needs. Technically it works \
        like a router for encrypted messages, and it works together with other chatmail relays \
        and ordinary e-mail servers.",
    privacy_unlike_head: "What this relay never does",
    privacy_unlike: [
        "It keeps no message for long: every message is deleted {{mail_days}} days after it \
         arrived, whether or not it was read; large ones (over 200 kB) that were read already \
         after {{large_days}} days.",
        "It sends and accepts only messages encrypted with OpenPGP. The only exceptions are the \
         short setup messages with which two Delta Chat apps start an encrypted chat \
         (Secure-Join), a user's own encrypted key-transfer message, and delivery-failure \
         reports of mail servers.",
        "It writes no Internet address (IP address) to disk or to its log.",
        "It never puts an IP address together with an e-mail address. While a connection is \
         open, its address is held in memory only, to limit how many unauthenticated \
         connections one address may open at once; it is forgotten when the connection ends.",
        "It has no advertising, no tracking and no analytics, and builds no profile of you.",
    ],
    privacy_who_head: "Who is responsible",
    privacy_who_intro: "Because the relay keeps almost no personal data it may not even need a \
        privacy policy. These details are for anyone who wants to check how it is run:",
    privacy_postal: "Operator (postal address)",
    privacy_mail: "E-mail",
    privacy_pdo: "Data protection officer",
    privacy_supervisor: "Supervisory authority",
    privacy_missing: "The operator of this relay has not filled this in yet.",
    privacy_data_head: "What is kept, and for how long",
    privacy_data_intro: "The relay only serves the Delta Chat apps and only handles what it \
        needs to set up a profile and to carry messages, so that you can write, read, send, \
        receive, manage and delete your messages:",
    privacy_data: [
        "Your address on {{domain}} and a one-way hash (Argon2id) of its password, made up by \
         the app; the password itself is never stored. Each profile has its own credentials, \
         and IMAP and SMTP both require them. The relay also notes the day (not the time) of \
         the last login; a profile without a login for {{inactive_days}} days is deleted with \
         all its messages.",
        "Messages for your devices, until you delete them or for at most {{mail_days}} days \
         ({{large_days}} days for read messages over 200 kB). One profile may hold up to \
         {{mailbox_size}} and {{max_messages}} messages; when the inbox is over 70 % of that \
         at the daily clean-up, or a delivery would take it over 75 %, its oldest messages \
         (older than a day) are removed until it is at 70 %.",
        "Messages on their way to another server, until that server takes them, for at most \
         {{queue_time}}; after that the sender gets a delivery-failure report.",
        "If you turn on push notifications, the token your app gives the relay for that \
         (encrypted by the app for the notification service), for at most 90 days. When a \
         message arrives, the relay passes only this token to the notification service \
         ({{notification_host}}): no address, no sender, no content.",
        "You can read, download and delete everything stored for you yourself, with Delta Chat \
         or any standard IMAP e-mail program, without asking the operator.",
        "Nothing else: no contact lists, no phone numbers, no other e-mail addresses, no \
         location.",
    ],
    privacy_realtime_head: "Realtime relay",
    privacy_realtime_promise: "Apps can use a realtime relay service to connect your devices \
        directly to each other, for calls and for short-lived messages such as live edits in \
        shared apps. The realtime relay only forwards this traffic while it flows; it never \
        stores it, not even in encrypted form.",
    privacy_realtime_iroh: "This relay tells the apps to use the realtime relay at {{iroh}}.",
    privacy_realtime_turn: "For calls it offers a TURN server at {{turn}}, with credentials \
        that expire after 5 days.",
    privacy_realtime_none: "This relay does not name a realtime relay or TURN server to the \
        apps at the moment.",
    privacy_accounts_head: "How profiles are created",
    privacy_accounts_open: "A profile is created when you scan this relay's QR code with Delta \
        Chat, or when the app makes up an address on {{domain}} and logs in with it for the \
        first time.",
    privacy_accounts_invite: "A profile is created only with an invitation: a QR code with a \
        one-time (or few-times) invite code, handed out by the operator and scanned with Delta \
        Chat. Without a valid invite code no profile is created.",
    privacy_accounts_closed: "This relay creates no new profiles at the moment; existing ones \
        keep working.",
    privacy_accounts_basis: "Either way the relay processes only the new address. The legal \
        basis is Art. 6 (1) (b) GDPR: by using the service you have a contract of use with us.",
    privacy_ops_head: "Keeping the service running and stopping abuse",
    privacy_ops_intro: "To deliver mail and to protect the service, the relay has to process \
        messages in transit, their content and their metadata such as headers and the SMTP \
        dialogue. Its log records delivery events to debug delivery problems and software \
        errors; it never contains IP addresses or message contents.",
    privacy_logs_ram: "The log is kept in memory only, never on disk: at most about 1 MiB, the \
        oldest lines dropped first, and all of it gone when the relay restarts.",
    privacy_logs_host: "The relay writes its log to the system it runs on; the operator keeps \
        it for a limited time only.",
    privacy_limits_intro: "Limits protect the relay from excessive use:",
    privacy_limits: [
        "Sending: {{per_minute}} messages per minute per profile on average, bursts of up to \
         {{burst}}.",
        "Storage: {{mailbox_size}} per profile.",
        "Message size: {{message_size}} per message.",
        "Connections: at most {{imap_conns}} IMAP and {{smtp_conns}} SMTP connections at once; \
         few unauthenticated connections per address.",
        "Any other limit the whole server needs to stay healthy, such as refusing new profiles \
         when memory or disk space run low.",
    ],
    privacy_ops_basis: "This processing is needed to provide the service, so its legal basis is \
        Art. 6 (1) (b) GDPR; for security and abuse prevention it is Art. 6 (1) (f) GDPR, our \
        legitimate interest being the purposes named here. We do not use any of this to draw \
        conclusions about you as a person.",
    privacy_web_head: "These web pages",
    privacy_web: "The relay serves these pages itself. It does not log who asks for them: no IP \
        address, no browser or operating system, no referring page. The pages set no cookies, \
        run no scripts and load nothing from other servers.",
    privacy_share_head: "Passing data on",
    privacy_share_intro: "The relay keeps no personal data beyond what is listed above, but \
        messages waiting for delivery may contain some. Messages go to the servers of their \
        recipients; push tokens go to the notification service as described. Beyond that, \
        data is passed to third parties only if:",
    privacy_share: [
        "you have expressly agreed to it (Art. 6 (1) (a) GDPR);",
        "it is needed to establish, exercise or defend legal claims and there is no reason to \
         think you have an overriding interest in it not being passed on (Art. 6 (1) (f) \
         GDPR);",
        "the law obliges us to (Art. 6 (1) (c) GDPR);",
        "it is lawful and needed to carry out our contract with you (Art. 6 (1) (b) GDPR);",
        "a carefully chosen service provider does it on our behalf and only on our \
         instructions, under a contract for commissioned processing that obliges it to keep \
         the data safe and lets us control it (Art. 28 (1) and (3) GDPR).",
    ],
    privacy_rights_head: "Your rights",
    privacy_rights: "Articles 12 to 23 GDPR give you rights of access, correction, deletion, \
        restriction, portability and objection. As the relay holds no personal data apart from \
        your address and your encrypted messages, you can exercise most of them yourself: \
        delete messages in Delta Chat or any IMAP program, and a profile you stop using is \
        deleted after {{inactive_days}} days.",
    privacy_contact: "Questions or complaints: write to {{mail_html}}.",
    privacy_complain: "You may also turn to a supervisory authority, usually the one where you \
        live or work, or the one responsible for the operator: {{supervisor_html}}.",
    privacy_version: "This statement describes chatrelay {{version}} with the settings this \
        relay runs with right now; the figures above are those settings. It changes when the \
        software, the settings or the law change.",

    info_title: "How {{domain}} works",
    info_join_head: "Joining",
    info_join_open: "Install Delta Chat, choose “Add Profile” → “Scan QR code” and scan the code \
        on the <a href=\"/\">home page</a>. The app makes up an address and password for you; \
        you never type either.",
    info_join_invite: "This relay is invite-only. Ask its operator for an invite QR code and \
        scan it with Delta Chat (“Add Profile” → “Scan QR code”). Each code works only as \
        often as the operator allowed and expires.",
    info_join_closed: "This relay does not take new profiles at the moment.",
    info_apps_head: "The apps",
    info_apps: "Delta Chat runs on Android, iOS, Windows, macOS and Linux; get it from your app \
        store or from delta.chat. Every message is end-to-end encrypted by the app before it \
        leaves your device; the relay only ever sees ciphertext.",
    info_limits_head: "Limits",
    info_limits: [
        "Messages are deleted {{mail_days}} days after arrival, read ones over 200 kB after \
         {{large_days}} days.",
        "Profiles without a login for {{inactive_days}} days are deleted.",
        "Storage per profile: {{mailbox_size}}, at most {{max_messages}} messages.",
        "Largest message: {{message_size}}.",
        "Sending: {{per_minute}} messages per minute, bursts of {{burst}}.",
        "Recipients per message: at most 1000.",
    ],
    info_fed_head: "Talking to other servers",
    info_fed_domain: "Addresses here look like name@{{domain}}. Messages to other chatmail relays \
        go over HTTPS or SMTP with verified TLS, signed with DKIM; ordinary e-mail servers are \
        reached over SMTP. Incoming mail from other domains must carry a valid DKIM signature \
        and be encrypted.",
    info_fed_ip: "Addresses here look like name@{{domain}}: this relay has no domain name, only \
        an IP address, and uses a self-signed certificate. It can exchange messages with other \
        relays that can reach this address; ordinary e-mail servers usually cannot.",
    info_dns_head: "DNS records",
    info_dns_domain: "A relay with a domain publishes: an A (and AAAA) record for {{domain}}, an \
        MX record pointing at it, the DKIM key as a TXT record at \
        {{selector}}._domainkey.{{domain}}, SPF and DMARC TXT records, and mta-sts / www \
        names. <code>chatrelay dns</code> prints them ready to paste.",
    info_dns_ip: "An IP-address relay needs no DNS records.",

    status_title: "Status of {{domain}}",
    status_lan_only: "This page is only shown on the local network.",
    status_address: "Address",
    status_registration: "New profiles",
    status_reg_open: "open: anyone who can reach the relay may create a profile",
    status_reg_invite: "invite only",
    status_reg_closed: "closed: no new profiles",
    status_invite_head: "Invitation",
    status_first_invite: "The first invitation, made at start-up while the relay has no \
        profiles yet (single use):",
    status_new_invite_button: "Make a new single-use invitation (valid 7 days)",
    status_new_invite_done: "New single-use invitation, valid 7 days. It is shown only now; the \
        relay keeps only a hash of it.",
    status_no_invite: "No invitation to show. Make one here or with \
        <code>chatrelay invite new</code>.",
    status_storage: "Storage",
    status_storage_line: "{{used}} used, {{free}} free on the data disk",
    status_accounts: "Profiles",
    status_certificate: "Certificate",
    status_cert_self_signed: "self-signed ({{path}})",
    status_cert_external: "from the operator ({{path}})",
    status_cert_acme: "Let's Encrypt (ACME)",
    status_privacy_warning: "The privacy policy is incomplete: {{fields}} not set in \
        chatmail.ini.",
    status_privacy_ok: "The privacy policy has all operator details.",
    status_checks_head: "Self-check",
    status_checks_none: "No self-check results yet.",
    status_forbidden: "The status page is only available on the local network.",
    status_cert_served: "Certificate served now",
    status_cert_names: "for {{names}}",
    status_cert_issuer: "issued by {{issuer}}",
    status_cert_self_issued: "issued by itself (self-signed)",
    status_cert_valid_until: "valid until {{date}}",
    status_cert_days_left: "{{days}} days left",
    status_cert_expired: "EXPIRED",
    status_checks_first: "The first self-check is running; reload this page in a minute.",
    status_checks_on_demand: "The self-check runs only when asked for here \
        (self_check_interval = 0).",
    status_checks_age: "Checked {{ago}} ({{time}}).",
    status_checks_running_now: "A new self-check is running; reload this page in a minute.",
    status_checks_ok_all: "No problems found.",
    status_checks_problems: "{{n}} problem(s) found.",
    status_checks_todo: "What to do:",
    status_checks_button: "Check again now",
    status_checks_started: "A new self-check has started; reload this page in a minute.",
    status_checks_busy: "A self-check is already running.",
    status_checks_too_soon: "The last self-check started less than a minute ago; \
        ask again in {{secs}} seconds.",
    check_labels: [
        ("clock", "Clock"),
        ("dns.a", "DNS: address (A)"),
        ("dns.mx", "DNS: mail exchanger (MX)"),
        ("dns.dkim", "DNS: DKIM key (TXT)"),
        ("dns.spf", "DNS: SPF (TXT)"),
        ("dns.dmarc", "DNS: DMARC (TXT)"),
        ("dns.mta-sts", "DNS: mta-sts name"),
        ("dns.www", "DNS: www name"),
        ("certificate", "Certificate"),
        ("router", "Router port mapping"),
        ("wan", "Internet address"),
        ("ports", "Ports listening"),
        ("privacy", "Privacy policy details"),
    ],
};

/// The strings for a request's `Accept-Language` (only English so far).
pub fn for_language(_accept_language: Option<&[u8]>) -> &'static Strings {
    &EN
}
