;;; Waltz line labelling for CLIPS, written for converge_rules' peer benchmark
;;; (bench/peers/). The structure of the classic benchmark, with tables of its own:
;;;
;;; 1. duplicate: each `line` becomes two directed `edge`s, one from each end.
;;; 2. detect_junctions: the edges leaving a point make a `junction` there: two edges an
;;;    L; three edges a tee (two of them collinear and opposite: the bar; the third is
;;;    the stem), an arrow (all three within less than 180 degrees: the middle one is
;;;    the shaft, the outer ones the barbs) or a fork (otherwise). A point is x*10000+y.
;;; 3. find_initial_boundary / find_second_boundary: the junction with the largest base
;;;    point, then the one with the smallest, seed the labels when it is an L (both
;;;    edges B) or an arrow (barbs B, shaft +).
;;; 4. labeling: labels spread one edge at a time. A labelled edge gives its reverse the
;;;    same label; at a junction, known labels fix an unlabelled edge wherever the
;;;    junction's catalogue leaves one choice:
;;;      L      {B B, + B, - B} (either order): one edge + or - makes the other B;
;;;      arrow  {B + B, + - +, - + -} (barb shaft barb): a barb gives the other barb
;;;             its label and the shaft + (barb B or -) or - (barb +); a shaft - makes
;;;             the barbs +;
;;;      fork   {+ + +, - - -, B B - in any order}: an edge + makes the others +; two
;;;             labelled edges fix the third (B B: -, B -: B, - -: -);
;;;      tee    {B s B} for any stem s: the bar edges are B, whatever is known.
;;;    Each rule only fills an unlabelled edge and the catalogue leaves it one choice,
;;;    so the labels do not depend on the order rules fire in (bench/peers/run.py
;;;    checks it with several CLIPS strategies).
;;; The answer is every directed edge's label (+, -, B), or none if it got none.
;;; Labels are the symbols plus, minus, B here (run.py writes them +, -, B).

(deftemplate line (slot p1) (slot p2))
(deftemplate stage (slot value))
(deftemplate edge (slot p1) (slot p2) (slot joined (default false)) (slot label (default nil)))
(deftemplate junction (slot type) (slot base_point) (slot p1) (slot p2) (slot p3 (default 0)))

;;; Geometry: a point is x*10000+y.
(deffunction dx (?from ?to) (- (div ?to 10000) (div ?from 10000)))
(deffunction dy (?from ?to) (- (mod ?to 10000) (mod ?from 10000)))
(deffunction cross (?bp ?a ?b)
  (- (* (dx ?bp ?a) (dy ?bp ?b)) (* (dy ?bp ?a) (dx ?bp ?b))))
(deffunction dot (?bp ?a ?b)
  (+ (* (dx ?bp ?a) (dx ?bp ?b)) (* (dy ?bp ?a) (dy ?bp ?b))))
;; Do the edges bp->a and bp->b point in opposite directions?
(deffunction opposite (?bp ?a ?b)
  (and (= (cross ?bp ?a ?b) 0) (< (dot ?bp ?a ?b) 0)))
;; Is bp->c strictly inside the angle of less than 180 degrees between bp->a and bp->b?
(deffunction between (?bp ?a ?c ?b)
  (bind ?s (cross ?bp ?a ?b))
  (and (<> ?s 0) (> (* (cross ?bp ?a ?c) ?s) 0) (> (* (cross ?bp ?c ?b) ?s) 0)))
;; The junction of three edges: (type p1 p2 p3), the middle point being the stem of a
;; tee or the shaft of an arrow; the other two (and a fork's three) in ascending order.
(deffunction junction-of (?bp ?a ?b ?c)
  (if (opposite ?bp ?a ?b) then (return (create$ tee (min ?a ?b) ?c (max ?a ?b))))
  (if (opposite ?bp ?a ?c) then (return (create$ tee (min ?a ?c) ?b (max ?a ?c))))
  (if (opposite ?bp ?b ?c) then (return (create$ tee (min ?b ?c) ?a (max ?b ?c))))
  (if (between ?bp ?a ?c ?b) then (return (create$ arrow (min ?a ?b) ?c (max ?a ?b))))
  (if (between ?bp ?a ?b ?c) then (return (create$ arrow (min ?a ?c) ?b (max ?a ?c))))
  (if (between ?bp ?b ?a ?c) then (return (create$ arrow (min ?b ?c) ?a (max ?b ?c))))
  (create$ fork (sort > ?a ?b ?c)))

;;; 1. duplicate

(defrule reverse-edges
  (stage (value duplicate))
  ?l <- (line (p1 ?a) (p2 ?b))
  =>
  (retract ?l)
  (assert (edge (p1 ?a) (p2 ?b)))
  (assert (edge (p1 ?b) (p2 ?a))))

(defrule done-reversing
  (declare (salience -10))
  ?s <- (stage (value duplicate))
  =>
  (modify ?s (value detect_junctions)))

;;; 2. detect_junctions

(defrule make-3-junction
  (stage (value detect_junctions))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (joined false))
  ?e2 <- (edge (p1 ?bp) (p2 ?b&~?a) (joined false))
  ?e3 <- (edge (p1 ?bp) (p2 ?c&~?a&~?b) (joined false))
  =>
  (bind ?j (junction-of ?bp ?a ?b ?c))
  (assert (junction (type (nth$ 1 ?j)) (base_point ?bp)
                    (p1 (nth$ 2 ?j)) (p2 (nth$ 3 ?j)) (p3 (nth$ 4 ?j))))
  (modify ?e1 (joined true))
  (modify ?e2 (joined true))
  (modify ?e3 (joined true)))

(defrule make-L
  (stage (value detect_junctions))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (joined false))
  ?e2 <- (edge (p1 ?bp) (p2 ?b&~?a) (joined false))
  (not (edge (p1 ?bp) (p2 ~?a&~?b)))
  =>
  (assert (junction (type L) (base_point ?bp) (p1 (min ?a ?b)) (p2 (max ?a ?b))))
  (modify ?e1 (joined true))
  (modify ?e2 (joined true)))

(defrule done-detecting
  (declare (salience -10))
  ?s <- (stage (value detect_junctions))
  =>
  (modify ?s (value find_initial_boundary)))

;;; 3. the two boundary seeds

(defrule initial-boundary-L
  (stage (value find_initial_boundary))
  (junction (type L) (base_point ?bp) (p1 ?a) (p2 ?b))
  (not (junction (base_point ?x&:(> ?x ?bp))))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label B)))

(defrule initial-boundary-arrow
  (stage (value find_initial_boundary))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (not (junction (base_point ?x&:(> ?x ?bp))))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?s) (label nil))
  ?e3 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label plus))
  (modify ?e3 (label B)))

(defrule done-initial-boundary
  (declare (salience -10))
  ?s <- (stage (value find_initial_boundary))
  =>
  (modify ?s (value find_second_boundary)))

(defrule second-boundary-L
  (stage (value find_second_boundary))
  (junction (type L) (base_point ?bp) (p1 ?a) (p2 ?b))
  (not (junction (base_point ?x&:(< ?x ?bp))))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label B)))

(defrule second-boundary-arrow
  (stage (value find_second_boundary))
  (junction (type arrow) (base_point ?bp) (p1 ?a) (p2 ?s) (p3 ?b))
  (not (junction (base_point ?x&:(< ?x ?bp))))
  ?e1 <- (edge (p1 ?bp) (p2 ?a) (label nil))
  ?e2 <- (edge (p1 ?bp) (p2 ?s) (label nil))
  ?e3 <- (edge (p1 ?bp) (p2 ?b) (label nil))
  =>
  (modify ?e1 (label B))
  (modify ?e2 (label plus))
  (modify ?e3 (label B)))

(defrule done-second-boundary
  (declare (salience -10))
  ?s <- (stage (value find_second_boundary))
  =>
  (modify ?s (value labeling)))

;;; 4. labeling

(defrule match-edge
  (stage (value labeling))
  (edge (p1 ?a) (p2 ?b) (label ?l&~nil))
  ?r <- (edge (p1 ?b) (p2 ?a) (label nil))
  =>
  (modify ?r (label ?l)))

(defrule label-L
  (stage (value labeling))
  (junction (type L) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label plus|minus))
  ?e <- (edge (p1 ?bp) (p2 ~?a) (label nil))
  =>
  (modify ?e (label B)))

(defrule label-arrow-other-barb
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?b1) (p3 ?b2))
  (edge (p1 ?bp) (p2 ?k&:(or (= ?k ?b1) (= ?k ?b2))) (label ?l&~nil))
  ?e <- (edge (p1 ?bp) (p2 ?o&~?k&:(or (= ?o ?b1) (= ?o ?b2))) (label nil))
  =>
  (modify ?e (label ?l)))

(defrule label-arrow-shaft
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?b1) (p2 ?s) (p3 ?b2))
  (edge (p1 ?bp) (p2 ?k&:(or (= ?k ?b1) (= ?k ?b2))) (label ?l&~nil))
  ?e <- (edge (p1 ?bp) (p2 ?s) (label nil))
  =>
  (modify ?e (label (if (eq ?l plus) then minus else plus))))

(defrule label-arrow-barbs
  (stage (value labeling))
  (junction (type arrow) (base_point ?bp) (p1 ?b1) (p2 ?s) (p3 ?b2))
  (edge (p1 ?bp) (p2 ?s) (label minus))
  ?e <- (edge (p1 ?bp) (p2 ?o&:(or (= ?o ?b1) (= ?o ?b2))) (label nil))
  =>
  (modify ?e (label plus)))

(defrule label-fork-plus
  (stage (value labeling))
  (junction (type fork) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?k) (label plus))
  ?e <- (edge (p1 ?bp) (p2 ~?k) (label nil))
  =>
  (modify ?e (label plus)))

(defrule label-fork-pair
  (stage (value labeling))
  (junction (type fork) (base_point ?bp))
  (edge (p1 ?bp) (p2 ?a) (label ?x&B|minus))
  (edge (p1 ?bp) (p2 ?b&~?a) (label ?y&B|minus))
  ?e <- (edge (p1 ?bp) (p2 ~?a&~?b) (label nil))
  =>
  (modify ?e (label (if (and (eq ?x B) (eq ?y B)) then minus
                     else (if (and (eq ?x minus) (eq ?y minus)) then minus else B)))))

(defrule label-tee
  (stage (value labeling))
  (junction (type tee) (base_point ?bp) (p1 ?b1) (p3 ?b2))
  ?e <- (edge (p1 ?bp) (p2 ?o&:(or (= ?o ?b1) (= ?o ?b2))) (label nil))
  =>
  (modify ?e (label B)))

(defrule done-labeling
  (declare (salience -10))
  ?s <- (stage (value labeling))
  =>
  (modify ?s (value done)))
