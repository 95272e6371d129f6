//! Hardware and OS backends. They speak their own domain and know nothing of LwM2M.
