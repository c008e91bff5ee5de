"""Test support shipped for connector authors, plugins included: the standard suite and the fake-system base.

Not used by the app at run time (it imports pytest); a plugin's own tests import it as
``from connectors.testing.standard_suite import StandardConnectorSuite``.
"""
