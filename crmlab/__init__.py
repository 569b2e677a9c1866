"""crmlab: cohorts, RFM/CLV, funnels, segments, A/B tests, uplift and message performance
for e-commerce CRM analysts. Tidy data in, tidy pandas frames and plots out."""
from .io.errors import DataError
from .io.schema import CHANNELS, DEFAULT_TZ, STANDARD_EVENTS
from .io.validate import canonical

__version__ = "0.1.0"
__all__ = ["DataError", "CHANNELS", "DEFAULT_TZ", "STANDARD_EVENTS", "canonical", "__version__"]
