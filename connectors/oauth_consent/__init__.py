"""OAuth 2.0 consent through the system browser for connectors (issue 17): RFC 6749 authorization code,
RFC 7636 PKCE, RFC 8252 loopback redirect.

- :mod:`.pkce`: verifier and S256 challenge.
- :mod:`.loopback`: the one-shot listener on 127.0.0.1 that receives the redirect.
- :mod:`.providers`: ServiceNow, Atlassian and Zoho endpoints and rules (with the sources' facts).
- :mod:`.tokens`: the token set and its keychain entry.
- :mod:`.flow`: sign in, exchange, refresh with rotation (:class:`~.flow.ConsentAuth`), revoke.
- :mod:`.connector`: what a connector declares and calls (the auth mode, its fields, its auth, revocation).
"""
