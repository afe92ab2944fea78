"""kgateway in a box: the Kubernetes Gateway API (GatewayClass, Gateway, HTTPRoute).

See ``helpers.runtime``'s map; ``kgateway.Kgateway`` ties the modules of this folder together.
"""
