;;; Waltz line labelling for CLIPS, written for converge_rules' peer benchmark
;;; (bench/peers/): the classic OPS5 / CLIPS benchmark's algorithm, rule for rule, so
;;; that rulesets/waltz/waltz.cvg (the same rules as agents) must give the same labels.
;;;
;;; A `stage` fact steps through the phases:
;;;  duplicate              each line becomes two directed edges, one from each end;
;;;  detect_junctions       the unjoined edges leaving a point make a junction there:
;;;                         two an L, three a tee, fork or arrow (make-3-junction);
;;;  find_initial_boundary  the junction with the largest base point, if an L or an
;;;                         arrow, is labelled as the boundary (L: B B; arrow: B + B);
;;;  find_second_boundary   then the one with the smallest base point;
;;;  labeling               labels spread: an edge gives its reverse its label, and the
;;;                         junction rules (label-L, label-tee-A/B, label-fork-1..4,
;;;                         label-arrow-1A..5B; the A rules at salience 5) label the
;;;                         other edges of a junction from the ones already known;
;;;  plot_remaining_edges   every edge is plotted; one still unlabelled is plotted as
;;;                         a boundary (the original's "kludge"; its label stays nil).
;;;
;;; Junctions (make-3-junction): a point is x * 100 + y, as the original decodes it.
;;; For each of the three edges, the sum of the angles it makes with the other two;
;;; the edge with the smallest sum is p2 (an arrow's shaft, a tee's stem), the others
;;; p1 and p3. That smallest sum is pi for a tee (within 0.001), more for a fork, less
;;; for an arrow.
;;;
;;; Labels are the symbols +, - and B; the answer is every edge's label (nil ones as
;;; plotted: B).

(deftemplate stage (slot value))
(deftemplate line (slot p1) (slot p2))
(deftemplate edge (slot p1) (slot p2) (slot joined) (slot label) (slot plotted))
(deftemplate junction (slot p1) (slot p2) (slot p3) (slot base_point) (slot type))

;;; --- geometry ----------------------------------------------------------------------

;; The direction of the edge from ?from to ?to, in radians, in (-pi, pi].
(deffunction direction (?from ?to)
  (bind ?dx (- (div ?to 100) (div ?from 100)))
  (bind ?dy (- (mod ?to 100) (mod ?from 100)))
  (if (= ?dx 0) then
    (if (> ?dy 0) then (return (/ (pi) 2)) else (return (- 0 (/ (pi) 2)))))
  (bind ?a (atan (/ ?dy ?dx)))
  (if (< ?dx 0) then
    (if (< ?dy 0) then (bind ?a (- ?a (pi))) else (bind ?a (+ ?a (pi)))))
  ?a)

;; The angle between the edges from ?bp to ?a and to ?b, in [0, pi].
(deffunction spread (?bp ?a ?b)
  (bind ?d (abs (- (direction ?bp ?a) (direction ?bp ?b))))
  (if (> ?d (pi)) then (- (* 2 (pi)) ?d) else ?d))

(deffunction make-3-junction (?bp ?a ?b ?c)
  (bind ?ab (spread ?bp ?a ?b))
  (bind ?ac (spread ?bp ?a ?c))
  (bind ?bc (spread ?bp ?b ?c))
  (bind ?sa (+ ?ab ?ac))
  (bind ?sb (+ ?ab ?bc))
  (bind ?sc (+ ?ac ?bc))
  (if (and (< ?sa ?sb) (< ?sa ?sc)) then
    (bind ?sum ?sa) (bind ?stem ?a) (bind ?one ?b) (bind ?two ?c)
   else
    (if (and (>= ?sa ?sb) (< ?sb ?sc)) then
      (bind ?sum ?sb) (bind ?stem ?b) (bind ?one ?a) (bind ?two ?c)
     else
      (bind ?sum ?sc) (bind ?stem ?c) (bind ?one ?a) (bind ?two ?b)))
  (if (< (abs (- ?sum (pi))) 0.001) then (bind ?type tee)
   else (if (> ?sum (pi)) then (bind ?type fork) else (bind ?type arrow)))
  (assert (junction (type ?type) (base_point ?bp) (p1 ?one) (p2 ?stem) (p3 ?two))))

;;; --- duplicate ---------------------------------------------------------------------

(defrule reverse-edges
  (stage (value duplicate))
  ?l <- (line (p1 ?a) (p2 ?b))
  =>
  (assert (edge (p1 ?a) (p2 ?b) (joined false)))
  (assert (edge (p1 ?b) (p2 ?a) (joined false)))
  (retract ?l))

(defrule done-reversing
  (declare (salience -10))
  ?s <- (stage (value duplicate))
  (not (line))
  =>
  (modify ?s (value detect_junctions)))

;;; --- detect_junctions --------------------------------------------------------------

(defrule make-3-junction
  (declare (salience 10))
  (stage (value detect_junctions))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (joined false))
  ?e2 <- (edge (p1 ?bp) (p2 ?b&~?a) (joined false))
  ?e3 <- (edge (p1 ?bp) (p2 ?c&~?a&~?b) (joined false))
  =>
  (make-3-junction ?bp ?a ?b ?c)
  (modify ?e1 (joined true))
  (modify ?e2 (joined true))
  (modify ?e3 (joined true)))

(defrule make-L
  (stage (value detect_junctions))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (joined false))
  ?e2 <- (edge (p1 ?bp) (p2 ?b&~?a) (joined false))
  (not (edge (p1 ?bp) (p2 ~?a&~?b)))
  =>
  (assert (junction (type L) (base_point ?bp) (p1 ?a) (p2 ?b)))
  (modify ?e1 (joined true))
  (modify ?e2 (joined true)))

(defrule done-detecting
  (declare (salience -10))
  ?s <- (stage (value detect_junctions))
  =>
  (modify ?s (value find_initial_boundary)))

;;; --- the two boundary junctions ----------------------------------------------------

(defrule initial-boundary-L
  ?s <- (stage (value find_initial_boundary))
  (junction (type L) (base_point ?bp) (p1 ?a) (p2 ?b))
  ?e1 <- (edge (p1 ?bp) (p2 ?a))
  ?e2 <- (edge (p1 ?bp) (p2 ?b))
  (not (junction (base_point ?x&:(> ?x ?bp))))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label B))
  (modify ?s (value find_second_boundary)))

(defrule initial-boundary-arrow
  ?s <- (stage (value find_initial_boundary))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?shaft) (p3 ?b))
  ?e1 <- (edge (p1 ?bp) (p2 ?a))
  ?e2 <- (edge (p1 ?bp) (p2 ?shaft))
  ?e3 <- (edge (p1 ?bp) (p2 ?b))
  (not (junction (base_point ?x&:(> ?x ?bp))))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label +))
  (modify ?e3 (label B))
  (modify ?s (value find_second_boundary)))

(defrule second-boundary-L
  ?s <- (stage (value find_second_boundary))
  (junction (type L) (base_point ?bp) (p1 ?a) (p2 ?b))
  ?e1 <- (edge (p1 ?bp) (p2 ?a))
  ?e2 <- (edge (p1 ?bp) (p2 ?b))
  (not (junction (base_point ?x&:(< ?x ?bp))))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label B))
  (modify ?s (value labeling)))

(defrule second-boundary-arrow
  ?s <- (stage (value find_second_boundary))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?shaft) (p3 ?b))
  ?e1 <- (edge (p1 ?bp) (p2 ?a))
  ?e2 <- (edge (p1 ?bp) (p2 ?shaft))
  ?e3 <- (edge (p1 ?bp) (p2 ?b))
  (not (junction (base_point ?x&:(< ?x ?bp))))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label +))
  (modify ?e3 (label B))
  (modify ?s (value labeling)))

;;; --- labeling ----------------------------------------------------------------------

;; An edge whose label is known gives it to its reverse; both are plotted.
(defrule match-edge
  (stage (value labeling))
  ?e <- (edge (p1 ?a) (p2 ?b) (label ?l&+|-|B))
  ?r <- (edge (p1 ?b) (p2 ?a) (label nil))
  =>
  (modify ?e (plotted t))
  (modify ?r (label ?l) (plotted t)))

(defrule label-L
  (stage (value labeling))
  (junction (type L) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label +|-))
  ?e <- (edge (p1 ?bp) (p2 ~?a) (label nil))
  =>
  (modify ?e (label B)))

(defrule label-tee-A
  (declare (salience 5))
  (stage (value labeling))
  (junction (type tee) (base_point ?bp) (p1 ?a) (p3 ?b))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?b))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label B)))

(defrule label-tee-B
  (stage (value labeling))
  (junction (type tee) (base_point ?bp) (p1 ?a) (p3 ?b))
  ?e1 <- (edge (p1 ?bp) (p2 ?a))
  ?e2 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label B)))

(defrule label-fork-1
  (stage (value labeling))
  (junction (type fork) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label +))
  ?e1 <- (edge (p1 ?bp) (p2 ?b&~?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ~?a&~?b))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label +)))

(defrule label-fork-2
  (stage (value labeling))
  (junction (type fork) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label B))
  (edge (p1 ?bp) (p2 ?b&~?a) (label -))
  ?e <- (edge (p1 ?bp) (p2 ~?a&~?b) (label nil))
  =>
  (modify ?e (label B)))

(defrule label-fork-3
  (stage (value labeling))
  (junction (type fork) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label B))
  (edge (p1 ?bp) (p2 ?b&~?a) (label B))
  ?e <- (edge (p1 ?bp) (p2 ~?a&~?b) (label nil))
  =>
  (modify ?e (label -)))

(defrule label-fork-4
  (stage (value labeling))
  (junction (type fork) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label -))
  (edge (p1 ?bp) (p2 ?b&~?a) (label -))
  ?e <- (edge (p1 ?bp) (p2 ~?a&~?b) (label nil))
  =>
  (modify ?e (label -)))

;; Arrows: p1 and p3 are the barbs, p2 the shaft. A barb B or - gives the shaft + and
;; the other barb its label; a barb + gives the shaft - and the other barb +; a shaft
;; - makes both barbs +. The A rule of each pair fires when the shaft (5: the second
;; barb) is unlabelled, the B rule when the other barb (5: the first) is.

(defrule label-arrow-1A
  (declare (salience 5))
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?a) (label ?l&B|-))
  ?e1 <- (edge (p1 ?bp) (p2 ?s) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?b))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label ?l)))

(defrule label-arrow-1B
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?a) (label ?l&B|-))
  ?e1 <- (edge (p1 ?bp) (p2 ?s))
  ?e2 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label ?l)))

(defrule label-arrow-2A
  (declare (salience 5))
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?b) (label ?l&B|-))
  ?e1 <- (edge (p1 ?bp) (p2 ?s) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?a))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label ?l)))

(defrule label-arrow-2B
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?b) (label ?l&B|-))
  ?e1 <- (edge (p1 ?bp) (p2 ?s))
  ?e2 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label ?l)))

(defrule label-arrow-3A
  (declare (salience 5))
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?a) (label +))
  ?e1 <- (edge (p1 ?bp) (p2 ?s) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?b))
  =>
  (modify ?e1 (label -))
  (modify ?e2 (label +)))

(defrule label-arrow-3B
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?a) (label +))
  ?e1 <- (edge (p1 ?bp) (p2 ?s))
  ?e2 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label -))
  (modify ?e2 (label +)))

(defrule label-arrow-4A
  (declare (salience 5))
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?b) (label +))
  ?e1 <- (edge (p1 ?bp) (p2 ?s) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?a))
  =>
  (modify ?e1 (label -))
  (modify ?e2 (label +)))

(defrule label-arrow-4B
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?b) (label +))
  ?e1 <- (edge (p1 ?bp) (p2 ?s))
  ?e2 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  =>
  (modify ?e1 (label -))
  (modify ?e2 (label +)))

(defrule label-arrow-5A
  (declare (salience 5))
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?s) (label -))
  ?e1 <- (edge (p1 ?bp) (p2 ?a))
  ?e2 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label +)))

(defrule label-arrow-5B
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (edge (p1 ?bp) (p2 ?s) (label -))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?b))
  =>
  (modify ?e1 (label +))
  (modify ?e2 (label +)))

(defrule done-labeling
  (declare (salience -10))
  ?s <- (stage (value labeling))
  =>
  (modify ?s (value plot_remaining_edges)))

;;; --- plot_remaining_edges ----------------------------------------------------------

(defrule plot-remaining
  (stage (value plot_remaining_edges))
  ?e <- (edge (plotted nil) (label ~nil))
  =>
  (modify ?e (plotted t)))

;; An edge no rule could label is plotted as a boundary (its label stays nil).
(defrule plot-boundaries
  (stage (value plot_remaining_edges))
  ?e <- (edge (plotted nil) (label nil))
  =>
  (modify ?e (plotted t)))

(defrule done-plotting
  (declare (salience -10))
  ?s <- (stage (value plot_remaining_edges))
  =>
  (modify ?s (value done)))
