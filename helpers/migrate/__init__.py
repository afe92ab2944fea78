"""From Gloo Edge to the Gateway API: VirtualServices converted to HTTPRoutes.

- ``converting``: ``convert`` / ``convert_objects`` (``coalmine convert``), with a
  warning for every part that has no faithful equivalent;
- ``destinations``: Gloo destinations (upstreams, groups, REST functions) as backendRefs;
- ``filters``: a route's options (headers, redirect, timeout, retries) as rule filters;
- ``ordering``: where first-match (Gloo) and best-match (Gateway API) pick differently,
  using the runtime's own precedence function so the two cannot disagree.
"""
