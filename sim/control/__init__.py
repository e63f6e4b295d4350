"""Golden models of the command controller (:mod:`hw.control`)."""
