Feature: BGP peering between the peering nodes and the router
  The BGP configuration (a peering policy on v1, a cluster config on BGPv2) selects nodes by label;
  each selected node's agent dials the router, which must know the node before a session can be
  established. Only labelled nodes peer.

  @destructive
  Rule: Peering a cluster with the router

    Background:
      Given the BGP control plane is enabled and ready

    Scenario: Sessions are active until the router knows the nodes, then established
      When the BGP configuration for nodes with the policy label is applied
      And the peering nodes are given the policy label
      Then every labelled node has a session with the router in state active
      When the router is configured to peer with every labelled node
      Then every labelled node's session with the router is established on both sides
      And every node without the policy label has no BGP session
      And every labelled node has received the default route from the router
      And every labelled node advertises its pod CIDR
      And the router's table holds every labelled node's pod CIDR through that node

  Rule: A cluster peering with the router

    Background:
      Given BGP peering between the labelled nodes and the router is established

    Scenario: Every labelled node peers with the router and exchanges routes
      Then every node without the policy label has no BGP session
      And every labelled node's session with the router is established on both sides
      And every labelled node has received the default route from the router
      And every labelled node advertises its pod CIDR
      And the router's table holds every labelled node's pod CIDR through that node

  Rule: From Cilium 1.17 each node reports its BGPv2 sessions in its node config
    The agent writes its peers' state into its CiliumBGPNodeConfig's status, so the cluster itself
    says which sessions are up, without an exec into every agent.

    @cilium_from_1_17 @bgp_v2
    Scenario: Every labelled node's BGP node config reports its session with the router
      Given BGP peering between the labelled nodes and the router is established
      Then every labelled node's BGP node config reports its session with the router established
