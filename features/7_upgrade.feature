@destructive
Feature: Upgrading Cilium with the service under load
  The release to reach is the topology's `cluster.upgrade_to` (or `--cilium-upgrade-to`); without one
  the upgrade does not apply. Cilium is upgraded one minor at a time, as its upgrade guide asks, with
  the installer the target uses (`cilium upgrade`, `helm upgrade`), every value given again so that
  BGP stays on; the agents roll as their DaemonSet's update strategy allows. The outside client's
  stream runs throughout, and each minor's rollout and recovery are timed on its clock.

  Background:
    Given the nginx service has an external IP announced to the router

  @cilium_upgrade @cilium_from_1_14
  Scenario: An upgrade one minor at a time with graceful restart keeps every path and every request
    An agent's readiness does not wait for its BGP sessions, so the rollout moves on while the nodes
    it restarted are still dialling; graceful restart keeps their paths at the router meanwhile.

    Given graceful restart is on for the peering nodes
    And the outside client sends a steady stream of requests to the LB IP
    When Cilium is upgraded one minor at a time to the target release
    Then after each minor every agent and the operator run it and every peering node's session and path to the LB IP come back
    And the router keeps a path to the LB IP and no request fails throughout

  @cilium_from_1_16 @cilium_before_1_19 @bgp_v1
  Scenario: Moving the peering policy to BGPv2 node by node keeps every path and every request
    Before 1.19, which ignores CiliumBGPPeeringPolicy objects, the policy's nodes move to BGPv2: a node
    joins BGPv2 while the policy still wins there, then the policy lets it go, one node at a time.

    Given graceful restart is on for the peering nodes
    And the outside client sends a steady stream of requests to the LB IP
    When each peering node in turn moves from the v1 peering policy to a BGPv2 cluster config
    Then every peering node runs BGPv2 with its session established and its path to the LB IP
    And the router keeps a path to the LB IP and no request fails throughout
