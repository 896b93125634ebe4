@scale
Feature: Many LoadBalancer services over many peering nodes
  A rack that carries one service may not carry five hundred: LB IPAM hands out addresses under a
  stream of creations, every peering node announces every /32, and the router holds one path per node
  and service. The run creates its own services, copies of the nginx service under other names, in
  batches (the topology's `scale` section says how many, how many at a time and over which pools),
  and removes them the same way. Nothing of the cluster's own is touched, so verify mode runs it too.

  Background:
    Given the nginx service has an external IP announced to the router

  Scenario: Every LB IP of many services is announced by every peering node and answers from outside
    When the run creates its scale services in batches
    Then every scale service holds its own external IP from its pool
    And the router has a path to every scale service's LB IP from every peering node
    And every scale service's LB IP answers HTTP from outside
    When the run removes its scale services in batches
    Then the router withdraws every scale service's LB IP
