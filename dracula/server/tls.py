"""The server's TLS context, from --ssl-certfile/--ssl-keyfile/--ssl-ca-certs."""

from __future__ import annotations

import ssl

from dracula.config import Config, ConfigError


def server_context(config: Config) -> ssl.SSLContext | None:
    if not config.ssl_certfile:  # Config.validate refuses a keyfile or CA file without it
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(config.ssl_certfile, config.ssl_keyfile)
        if config.ssl_ca_certs:
            # Clients must present a certificate signed by one of these.
            context.load_verify_locations(config.ssl_ca_certs)
            context.verify_mode = ssl.CERT_REQUIRED
    except (OSError, ssl.SSLError) as e:
        raise ConfigError("cannot load TLS files: %s" % e) from None
    return context
