@destructive
Feature: Faults with the service under load
  The outside client sends a steady stream of requests to the LB IP, each a new connection from a new
  source port, while the router's sessions and the LB route's paths and next hops are sampled on the
  same clock. A fault is injected; the timeline, with the fault's moment marked, and its figures
  (failed requests, the longest gap without an answer, session flaps, withdrawals) go to the report.
  What a fault may cost comes from the topology: the BGP hold time, and its `disruption` section.

  Background:
    Given the nginx service has an external IP announced to the router

  Scenario: A peering node that goes away is withdrawn and the other nodes carry the traffic
    Given the outside client sends a steady stream of requests to the LB IP
    When a peering node that does not run nginx loses its link
    Then the router withdraws that node's path to the LB IP within the hold time
    And requests keep succeeding through the other peering nodes

  Scenario: An agent restart without graceful restart moves the traffic away and back
    Given graceful restart is off for the peering nodes
    And the outside client sends a steady stream of requests to the LB IP
    When the Cilium agent of a peering node that does not run nginx restarts
    Then the router withdraws that node's path to the LB IP within the hold time
    And requests keep succeeding through the other peering nodes
    And the node's session is established again and its path to the LB IP comes back

  @cilium_from_1_14
  Scenario: An agent restart with graceful restart keeps the routes and every request
    Given graceful restart is on for the peering nodes
    And the outside client sends a steady stream of requests to the LB IP
    When the Cilium agent of a peering node that does not run nginx restarts
    Then the router keeps every path to the LB IP until the agent is back
    And no request fails
    And the node's session is established again and its path to the LB IP comes back

  Scenario: Deleting the LoadBalancer service withdraws its address from the router
    Given the outside client sends a steady stream of requests to the LB IP
    When the nginx LoadBalancer service is deleted
    Then the LB IP's route leaves the router within the hold time

  Scenario: A router restart brings every session and the LB IP's paths back
    The nodes dial the router again as their speakers' connect retry allows (the Cilium version's),
    and the restarted router must come back with the neighbors it was given.

    Given the outside client sends a steady stream of requests to the LB IP
    When the router restarts
    Then every session with the router is established again and the LB IP's paths come back
