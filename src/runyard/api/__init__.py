"""The AWS JSON 1.0 edge: parsing, validation, SigV4, dispatch to one provider per service.

Imports control/ (commands and queries) and never store/, runtime/ or build/.
"""
