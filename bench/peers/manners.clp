;;; Miss Manners for CLIPS, written for converge_rules' peer benchmark (bench/peers/).
;;;
;;; Seat the guests of a mannersN.fct file so that neighbours are of opposite sex and
;;; share a hobby. The classic algorithm: a depth-first search kept in working memory.
;;; Each `seating` is a node of the search (seat2 is the seat it filled, pid its parent);
;;; its `path` facts are the whole partial seating it stands for; `chosen` remembers
;;; which guest was already tried after a node, so the search never repeats a choice.
;;; One control fact, `context`, steps through the phases, one rule firing at a time.
;;; The answer is the `path` facts of the seating that fills the last seat.

(deftemplate guest (slot name) (slot sex) (slot hobby))
(deftemplate last_seat (slot seat))
(deftemplate count (slot c))
(deftemplate context (slot state))
(deftemplate seating
  (slot seat1) (slot name1) (slot name2) (slot seat2) (slot id) (slot pid)
  (slot path_done))
(deftemplate path (slot id) (slot name) (slot seat))
(deftemplate chosen (slot id) (slot name) (slot hobby))

;; Seat 1: any guest starts the table.
(defrule assign-first-seat
  ?ctx <- (context (state start))
  (guest (name ?n))
  ?cnt <- (count (c ?c))
  =>
  (assert (seating (seat1 1) (name1 ?n) (name2 ?n) (seat2 1) (id ?c) (pid 0)
                   (path_done yes)))
  (assert (path (id ?c) (name ?n) (seat 1)))
  (modify ?cnt (c (+ ?c 1)))
  (modify ?ctx (state assign_seats)))

;; Extend a finished node by one seat: a guest of the other sex with a shared hobby,
;; not already at the table on this node's path and not tried after this node before.
(defrule find-seating
  ?ctx <- (context (state assign_seats))
  (seating (seat2 ?s2) (name2 ?n2) (id ?id) (path_done yes))
  (guest (name ?n2) (sex ?sex) (hobby ?h))
  (guest (name ?g) (sex ~?sex) (hobby ?h))
  ?cnt <- (count (c ?c))
  (not (path (id ?id) (name ?g)))
  (not (chosen (id ?id) (name ?g) (hobby ?h)))
  =>
  (assert (seating (seat1 ?s2) (name1 ?n2) (name2 ?g) (seat2 (+ ?s2 1)) (id ?c)
                   (pid ?id) (path_done no)))
  (assert (path (id ?c) (name ?g) (seat (+ ?s2 1))))
  (assert (chosen (id ?id) (name ?g) (hobby ?h)))
  (modify ?cnt (c (+ ?c 1)))
  (modify ?ctx (state make_path)))

;; Copy the parent's path into the new node, one guest at a time.
(defrule make-path
  (context (state make_path))
  (seating (id ?id) (pid ?pid) (path_done no))
  (path (id ?pid) (name ?n) (seat ?s))
  (not (path (id ?id) (name ?n)))
  =>
  (assert (path (id ?id) (name ?n) (seat ?s))))

;; Once the copy is complete (nothing left for make-path), the node is finished.
(defrule path-done
  (declare (salience -10))
  ?ctx <- (context (state make_path))
  ?st <- (seating (path_done no))
  =>
  (modify ?st (path_done yes))
  (modify ?ctx (state check_done)))

(defrule are-we-done
  ?ctx <- (context (state check_done))
  (last_seat (seat ?last))
  (seating (seat2 ?last))
  =>
  (modify ?ctx (state done)))

(defrule continue
  (declare (salience -10))
  ?ctx <- (context (state check_done))
  =>
  (modify ?ctx (state assign_seats)))
